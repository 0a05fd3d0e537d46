"""LoRA SFT of a Korean chat model on Ray Train: ``korlora train`` as a Ray job.

On this machine (a local Ray instance; CPU works, tiny-ko needs no download)::

    ray start --head --dashboard-host=127.0.0.1 --num-cpus 2
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m pipelines.train --model_name_or_path tiny-ko --profile cpu \\
        --data_file "$PWD/data/korean_sft_final.jsonl" --output_dir "$PWD/output/korean_lora" --max_steps 20
    ray stop

On the AWS cluster of ``ray_cluster.yaml`` (``ray up`` and ``ray dashboard`` running; data on EFS)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m pipelines.train --model_name_or_path Qwen/Qwen2.5-1.5B-Instruct --profile h100 \\
        --num_workers 8 --data_file /mnt/shared/data/korean_sft_final.jsonl \\
        --output_dir /mnt/shared/output/korean_lora --storage_path /mnt/shared/ray_results

Paths must be absolute or shared: the job runs in a temporary copy of the working directory, and the
workers may run on other nodes. Re-submitting with the same ``--run_name`` (or the same settings) resumes
from the last checkpoint. Every flag of ``korlora train`` works here (``--config train.yaml`` too).
"""

from __future__ import annotations

import sys

from korlora.cli import run_command
from korlora.raycompat import init_local_ray
from korlora.train.config import TrainConfig
from korlora.train.driver import train_command


def main(argv: list[str] | None = None) -> int:
    # init_local_ray joins the job's cluster through RAY_ADDRESS
    argv = sys.argv[1:] if argv is None else argv
    return run_command(TrainConfig, train_command, argv, prog="python -m pipelines.train",
                       description=__doc__.splitlines()[0], prepare=init_local_ray)


if __name__ == "__main__":
    sys.exit(main())
