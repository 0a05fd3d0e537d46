"""Ray Tune over the learning rate and the relearn data mix, as one Ray job tracked in MLflow.

Against a local cluster (``ray start --head --dashboard-host=127.0.0.1``; token auth is on by default), with
an MLflow server that the cluster can reach::

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 RAY_AUTH_MODE=token \\
    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}}' -- \\
        python -m pipelines.tune --config configs/tune.yaml --data_file "$PWD/data/korean_sft_train.jsonl" \\
        --run_dir "$PWD/runs/tune"

On the GPU cluster of ``ray_cluster.yaml`` one trial runs per GPU; paths must be on shared storage
(``--run_dir /mnt/shared/runs/tune``). Every flag of ``korlora tune`` works here; ``--help`` lists them.
"""

from __future__ import annotations

import sys

from korlora.cli import run_command
from korlora.raycompat import init_local_ray
from korlora.tune.config import TuneConfig
from korlora.tune.search import tune_command


def main(argv: list[str] | None = None) -> int:
    # init_local_ray joins the job's cluster through RAY_ADDRESS
    argv = sys.argv[1:] if argv is None else argv
    return run_command(TuneConfig, tune_command, argv, prog="python -m pipelines.tune",
                       description=__doc__.splitlines()[0], prepare=init_local_ray)


if __name__ == "__main__":
    sys.exit(main())
