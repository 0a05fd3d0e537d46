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

from korlora.config import parse_config
from korlora.errors import KorloraError
from korlora.raycompat import init_local_ray
from korlora.tune.config import TuneConfig
from korlora.tune.search import tune_command


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config(TuneConfig, argv, prog="python -m pipelines.tune", description=__doc__.splitlines()[0])
    except (KorloraError, ValueError) as e:
        print(f"pipelines.tune: error: {e}", file=sys.stderr)
        return 2
    init_local_ray()  # joins the job's cluster through RAY_ADDRESS
    try:
        return tune_command(cfg)
    except KorloraError as e:
        print(f"pipelines.tune: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
