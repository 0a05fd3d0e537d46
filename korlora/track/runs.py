"""The one MLflow run lifecycle of korlora.

Every stage, training run, relearn and sweep opens its run with :func:`tracked_run`. The run ends
``FINISHED`` when the block completes, ``KILLED`` on Ctrl-C (``KeyboardInterrupt``) or ``SystemExit``,
and ``FAILED`` on any other exception — and runs that code inside the block left open (a nested stage's)
end with the same status first, so an enclosing run is never ended in their place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from korlora.track.mlflow_utils import safe_params, setup


def _status(error: BaseException | None) -> str:
    if error is None:
        return "FINISHED"
    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"


def _end_through(run_id: str, status: str) -> None:
    """End every active run above ``run_id`` on MLflow's stack, then ``run_id`` itself."""
    import mlflow

    while (active := mlflow.active_run()) is not None:
        mlflow.end_run(status=status)
        if active.info.run_id == run_id:
            return
    mlflow.MlflowClient().set_terminated(run_id, status)  # not on the stack any more: end it by id


@contextlib.contextmanager
def tracked_run(experiment: str | None = None, *, run_name: str | None = None, run_id: str | None = None,
                nested: bool | None = None, params: dict[str, Any] | None = None,
                tags: dict[str, str] | None = None) -> Iterator[Any]:
    """Start (or, with ``run_id``, resume) an MLflow run and always give it a final status.

    ``experiment``: set the tracking URI and experiment first (None: keep the current ones, e.g. inside a
    parent run). ``nested``: default — nest under the active run when there is one. ``params`` are logged
    (secrets dropped) where the run does not have them yet."""
    import mlflow

    if experiment is not None:
        setup(experiment)
    if nested is None:
        nested = mlflow.active_run() is not None
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=nested, tags=tags)
    error: BaseException | None = None
    try:
        missing = {k: v for k, v in safe_params(params or {}).items() if k not in run.data.params}
        if missing:  # a new run; a resumed one keeps its values (MLflow refuses to change a param)
            mlflow.log_params(missing)
        yield run
    except BaseException as e:
        error = e
        with contextlib.suppress(Exception):
            mlflow.set_tag("korlora.error", f"{type(e).__name__}: {e}"[:5000])
        raise
    finally:
        _end_through(run.info.run_id, _status(error))
