"""CPU smoke test of ``benchmarks/gpu_check.py``: without a CUDA device nothing is checked, and it says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_without_cuda_skips_every_check_and_exits_3(tmp_path):
    out = tmp_path / "gpu-check"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, even on a machine with a GPU
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--out", str(out),
                           "--checks", "train_bf16", "diagnose", "--steps", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert report["passed"] is False and report["device"] is None
    assert [c["name"] for c in report["checks"]] == ["prepare", "train_bf16", "diagnose"]
    assert all(c["status"] == "skip" and c["detail"] == "no CUDA device" for c in report["checks"])
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "nothing was checked (no CUDA device)" in table
    assert "| train_bf16 | skip | 0.0 | - | no CUDA device |" in table
    assert "nothing was checked" in proc.stdout
