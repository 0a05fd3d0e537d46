"""Adapters in the MLflow Model Registry: a version per sweep's best, the alias ``champion`` on the best."""

from __future__ import annotations

import json
import math

CHAMPION = "champion"


def _tag(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def current_champion(client, name: str):
    """The version holding the alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def promote_champion(client, name: str, run_id: str, artifact_path: str, objective: float,
                     tags: dict | None = None) -> dict:
    """Register ``run_id``'s ``artifact_path`` (a PEFT adapter directory) as a new version of ``name``;
    move ``champion`` to it only when its ``objective`` is lower than the current champion's.

    Versions point at the run's artifacts (``create_model_version``): the adapter is a plain directory,
    which ``mlflow.register_model`` would refuse without a logged MLflow model.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="korlora LoRA adapters; alias 'champion' = the best "
                                                         "sweep objective so far (lower is better)")
    run = client.get_run(run_id)
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", run_id=run_id,
        tags={**{k: _tag(v) for k, v in (tags or {}).items()}, "objective": repr(float(objective))},
        description="PEFT LoRA adapter; load with AutoPeftModelForCausalLM.from_pretrained(<downloaded dir>)")
    previous = current_champion(client, name)
    previous_objective = float(previous.tags.get("objective", "inf")) if previous else math.inf
    promoted = objective < previous_objective
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return {"name": name, "version": int(version.version), "promoted": promoted,
            "champion_version": int(version.version) if promoted else int(previous.version),
            "previous_version": int(previous.version) if previous else None,
            "previous_objective": None if previous is None else previous_objective}
