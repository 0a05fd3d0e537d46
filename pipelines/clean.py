"""Clean a Korean chat dataset on a Ray cluster (and optionally cap its disclaimer share).

On a running cluster (the driver joins it through ``RAY_ADDRESS``, which ``ray job submit`` sets)::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m pipelines.clean data/korean_sft_train.jsonl -o data/korean_sft_train_cleaned.jsonl

    # clean, then keep disclaimer rows at ≤ 5% (the relearn recipe's first two steps)
    RAY_AUTH_MODE=token ray job submit --working-dir . -- \\
        python -m pipelines.clean data/korean_sft_train.jsonl -o data/korean_sft_train_cleaned.jsonl \\
        --rebalance_output data/korean_sft_rebalanced.jsonl --max_ratio 0.05

Locally (starts a Ray instance when none is running)::

    python -m pipelines.clean data/korean_sft_train.jsonl -o data/clean.jsonl --num_blocks 8

Every flag of ``korlora data clean`` works here (``--config clean.yaml`` too); ``--help`` lists them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from korlora.clean.config import CleanConfig, RebalanceConfig
from korlora.clean.pipeline import clean_dataset, print_summary
from korlora.clean.rebalance import rebalance_dataset
from korlora.config import parse_config
from korlora.errors import KorloraError
from korlora.raycompat import init_local_ray


@dataclass
class CleanJobConfig(CleanConfig):
    """``korlora data clean`` plus an optional rebalance of the cleaned file."""

    rebalance_output: str | None = field(default=None, metadata={
        "help": "also write the cleaned rows with disclaimer rows capped at --max_ratio here"})
    max_ratio: float = field(default=0.05, metadata={"help": "largest disclaimer share after rebalancing"})
    seed: int = field(default=0, metadata={"help": "seed of the rebalance selection"})


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_config(CleanJobConfig, sys.argv[1:] if argv is None else argv, prog="pipelines.clean",
                           description=__doc__.splitlines()[0], positional=("input",))
        if cfg.engine == "ray":
            init_local_ray(cfg.num_cpus)
        summary = clean_dataset(cfg)
        print_summary("clean", summary)
        print(f"wrote {cfg.output}, {cfg.rejects}, {cfg.summary}")
        if cfg.rebalance_output:
            rb = RebalanceConfig(input=cfg.output, output=cfg.rebalance_output, max_ratio=cfg.max_ratio,
                                 seed=cfg.seed, num_blocks=cfg.num_blocks, engine=cfg.engine)
            stats = rebalance_dataset(rb)
            print(f"rebalance: disclaimer share {stats['before']['share']:.1%} → {stats['after']['share']:.1%}; "
                  f"wrote {rb.output}, {rb.stats}")
    except (KorloraError, ValueError) as e:
        print(f"pipelines.clean: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
