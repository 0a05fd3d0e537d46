"""Stages that remember what they did: a stage is skipped when its inputs, settings and outputs are unchanged.

Each finished stage leaves ``<run_dir>/stages/<name>.json`` with the sha256 of its inputs and outputs and
a digest of its settings. When a run is killed and started again, every stage whose record still matches
is reused, so a crash during training never rebuilds the data.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from korlora.io import sha256_file, write_json


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of every file under a directory (names and contents)."""
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(p.relative_to(path).as_posix().encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


@dataclass
class Stage:
    name: str
    run: Callable[[], dict | None]
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageRunner:
    run_dir: Path
    log_to_mlflow: bool = True
    history: list[dict] = field(default_factory=list)

    def _record_path(self, stage: Stage) -> Path:
        return self.run_dir / "stages" / f"{stage.name}.json"

    def _fingerprint(self, stage: Stage) -> dict:
        return {
            "inputs": {str(p): sha256_path(p) for p in stage.inputs if p.exists()},
            "settings": hashlib.sha256(json.dumps(stage.settings, sort_keys=True, default=str).encode()).hexdigest(),
        }

    def is_fresh(self, stage: Stage) -> bool:
        record_path = self._record_path(stage)
        if not record_path.exists():
            return False
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("fingerprint") != self._fingerprint(stage):
            return False
        return all(Path(p).exists() and sha256_path(Path(p)) == digest for p, digest in record["outputs"].items())

    def __call__(self, stage: Stage) -> dict:
        missing = [str(p) for p in stage.inputs if not p.exists()]
        if missing:
            raise FileNotFoundError(f"stage {stage.name}: missing inputs {missing}")
        if self.is_fresh(stage):
            record = json.loads(self._record_path(stage).read_text(encoding="utf-8"))
            print(f"── {stage.name}: unchanged, reusing {', '.join(Path(p).name for p in record['outputs'])}")
            self.history.append({"stage": stage.name, "status": "reused"})
            return record.get("result") or {}
        print(f"── {stage.name} " + "─" * max(0, 56 - len(stage.name)), flush=True)
        started = time.perf_counter()
        result = self._run(stage)
        record = {
            "stage": stage.name,
            "fingerprint": self._fingerprint(stage),
            "outputs": {str(p): sha256_path(p) for p in stage.outputs},
            "settings": stage.settings,
            "seconds": round(time.perf_counter() - started, 2),
            "result": result,
        }
        write_json(self._record_path(stage), record)
        self.history.append({"stage": stage.name, "status": "ran", "seconds": record["seconds"]})
        return result or {}

    def _run(self, stage: Stage) -> dict | None:
        if not self.log_to_mlflow:
            return stage.run()
        import mlflow

        from korlora.track.runs import tracked_run

        with tracked_run(run_name=stage.name, nested=True, params=stage.settings):
            result = stage.run()
            for path in stage.outputs:
                if path.is_file() and path.suffix == ".json":
                    mlflow.log_artifact(str(path), stage.name)
                for extra in (path.with_suffix(".manifest.json"), path.with_suffix(".summary.json"),
                              path.with_suffix(".report.png"), path.with_suffix(".rebalance.json")):
                    if extra.exists():
                        mlflow.log_artifact(str(extra), stage.name)
            numbers = {k: v for k, v in (result or {}).items() if isinstance(v, (int, float))}
            if numbers:
                mlflow.log_metrics(numbers)
            return result
