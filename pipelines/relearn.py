"""The root fix as one Ray job: clean → rebalance → no-warning → correction → merge → re-fine-tune → diagnose.

Against a local cluster (``ray start --head --dashboard-host=127.0.0.1``; token auth is on by default)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m pipelines.relearn --data_file data/korean_sft_train.jsonl \\
        --model_name_or_path Qwen/Qwen2.5-1.5B --init_adapter output/korean_lora

On H100 workers (the seed's run_relearn_h100.sh)::

    RAY_AUTH_MODE=token ray job submit --working-dir . -- \\
        python -m pipelines.relearn --profile h100 --init_adapter /mnt/shared/adapters/korean_lora \\
        --run_dir /mnt/shared/runs/relearn

Every flag of ``korlora relearn`` works here, and ``--config relearn.yaml``; ``--help`` lists them.
"""

from __future__ import annotations

import sys

from korlora.cli import run_command
from korlora.raycompat import init_local_ray
from korlora.relearn.config import RelearnConfig
from korlora.relearn.pipeline import relearn_command


def main(argv: list[str] | None = None) -> int:
    # init_local_ray joins the job's cluster through RAY_ADDRESS
    argv = sys.argv[1:] if argv is None else argv
    return run_command(RelearnConfig, relearn_command, argv, prog="python -m pipelines.relearn",
                       description=__doc__.splitlines()[0], prepare=init_local_ray)


if __name__ == "__main__":
    sys.exit(main())
