"""Cleaning Korean chat data: schema, noisy starts, Korean purity, speech levels, dedup, disclaimers, mixing.

Modules by concern: :mod:`~korlora.clean.korean` (Hangul share, speech levels with Kiwi),
:mod:`~korlora.clean.noise` (how answers start, repair), :mod:`~korlora.clean.disclaimer` (the disclaimer
family), :mod:`~korlora.clean.dedup` (exact keys, MinHash LSH), :mod:`~korlora.clean.imports` (Alpaca,
ShareGPT, Parquet), :mod:`~korlora.clean.gates` (the per-row gates), :mod:`~korlora.clean.pipeline`
(``data clean`` / ``data check`` on Ray Data), :mod:`~korlora.clean.rebalance` and :mod:`~korlora.clean.merge`.
"""
