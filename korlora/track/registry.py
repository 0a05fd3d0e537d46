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


def promote_champion(client, name: str, run_id: str, artifact_path: str, objective: float | None = None,
                     tags: dict | None = None, evaluation: dict | None = None, gate=None) -> dict:
    """Register ``run_id``'s ``artifact_path`` (a PEFT adapter directory) as a new version of ``name`` and
    decide whether ``champion`` moves to it.

    With ``evaluation`` (the ``overall`` figures of ``korlora eval``) and a ``gate``
    (:class:`~korlora.eval.config.GateConfig`): only when the figures pass every threshold and score higher
    than the champion's (:mod:`korlora.eval.gate`); the figures become tags of the version (``eval_*``,
    ``gate``). Without them: when ``objective`` is lower than the champion's.

    Versions point at the run's artifacts (``create_model_version``): the adapter is a plain directory,
    which ``mlflow.register_model`` would refuse without a logged MLflow model.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="korlora LoRA adapters; alias 'champion' = the best "
                                                         "sweep objective so far (lower is better)")
    if evaluation is None and objective is None:
        raise ValueError("promote_champion needs an objective or an evaluation")
    previous = current_champion(client, name)
    all_tags = {k: _tag(v) for k, v in (tags or {}).items()}
    decision = None
    if objective is not None:
        all_tags["objective"] = repr(float(objective))
    if evaluation is not None:
        from korlora.eval.gate import decide

        champion_score = float(previous.tags["eval_score"]) if previous and "eval_score" in previous.tags else None
        decision = decide(evaluation, gate, champion_score)
        all_tags.update({f"eval_{k.removesuffix('_share')}": f"{v:.4f}" for k, v in evaluation.items()
                         if isinstance(v, float)})
        all_tags["eval_score"] = f"{decision['score']:.6f}"
        all_tags["gate"] = "passed" if decision["passed"] else "failed: " + "; ".join(decision["failures"])
        promoted = decision["promote"]
    else:
        previous_objective = float(previous.tags.get("objective", "inf")) if previous else math.inf
        promoted = objective < previous_objective
    run = client.get_run(run_id)
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", run_id=run_id, tags=all_tags,
        description="PEFT LoRA adapter; load with AutoPeftModelForCausalLM.from_pretrained(<downloaded dir>)")
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return {"name": name, "version": int(version.version), "promoted": promoted,
            "champion_version": int(version.version) if promoted else (int(previous.version) if previous else None),
            "previous_version": int(previous.version) if previous else None,
            "previous_objective": float(previous.tags["objective"]) if previous and "objective" in previous.tags
            else None, "gate": decision}
