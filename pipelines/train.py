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

from korlora.config import parse_config
from korlora.errors import KorloraError
from korlora.train.config import TrainConfig
from korlora.train.driver import run_training


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_config(TrainConfig, sys.argv[1:] if argv is None else argv, prog="pipelines.train",
                           description=__doc__.splitlines()[0])
        result = run_training(cfg)
    except (KorloraError, ValueError) as e:
        print(f"pipelines.train: error: {e}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()) if k != "final")
    print(f"metrics: {shown}" + (f"\nmlflow run: {result.mlflow_run_id}" if result.mlflow_run_id else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
