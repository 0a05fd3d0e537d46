"""Test helpers: a real ``mlflow server`` in a subprocess, and a check of its UI in headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

# The closed network makes a default Chromium retry update/sync/QUIC endpoints and stall; these keep it quiet.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

# MLflow 3.17's UI: the experiment's runs tab (``/#/experiments/<id>`` alone opens the GenAI "Overview" tab,
# even for an experiment of plain training runs) and a registered model's page. Nested runs start collapsed
# under their parent behind an icon-only expander button in the "Run Name" cell; the button has no label, only
# this component id.
RUNS_PAGE = "{base}/#/experiments/{experiment_id}/runs"
MODEL_PAGE = "{base}/#/models/{model_name}"
GRID_CELL = '[role="gridcell"]'
EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'
# The AI assistant panel opens by itself on a first visit from localhost and hides a quarter of the page.
NO_ASSISTANT = "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true')"


def chromium_path() -> str | None:
    """Debian's Chromium (``make browser`` installs it), or ``None`` when this machine has none."""
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200 and response.read().strip() == b"OK"
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def mlflow_server(root: Path, timeout: float = 120) -> Iterator[str]:
    """Run ``mlflow server`` on a free local port with its store under ``root``; yields the base URL.

    The server (gunicorn/uvicorn with its workers) runs in its own process group, killed as a whole on exit.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "mlflow-server.log"
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow_bin)] if mlflow_bin.exists() else [sys.executable, "-m", "mlflow"]
    command += ["server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1"]
    # no background job runner (GenAI judges; seven more processes to start on 2 cores) and no telemetry
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {server.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server not healthy after {timeout:.0f}s:\n{_tail(log_path)}")
            time.sleep(1)
        yield url
    finally:
        _kill_group(server)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


def _kill_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group that ``process`` leads, SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)  # anyone left in the group (workers outliving the server)?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _visible_text(page: Page, limit: int = 2000) -> str:
    """The page's visible text for an error message: its <main> part (not the sidebar) where it has one."""
    try:
        part = "main" if page.locator("main").count() else "body"
        return " | ".join(page.inner_text(part, timeout=5000).split("\n"))[:limit]
    except Exception as error:  # only for an error message
        return f"<no text: {error}>"


def _run_link(page: Page, name: str) -> Locator:
    return page.locator(GRID_CELL).get_by_role("link", name=name, exact=True).first


def _show_runs(page: Page, run_names: list[str], timeout: float) -> list[str]:
    """Click expanders (each parent once) until every run name shows in the runs table; returns those seen."""
    page.locator(GRID_CELL).get_by_role("link").first.wait_for(timeout=timeout * 1000)
    clicked: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        seen = [name for name in run_names if _run_link(page, name).is_visible()]
        if len(seen) == len(run_names) or time.monotonic() > deadline:
            return seen
        for cell in page.locator(GRID_CELL).filter(has=page.locator(EXPANDER)).all():
            parent = cell.get_by_role("link").first.get_attribute("href")
            if parent not in clicked:
                cell.locator(EXPANDER).click()
                clicked.add(parent)
        time.sleep(0.5)


def check_mlflow_ui(base_url: str, experiment_name: str, run_names: list[str], model_name: str, alias: str,
                    screenshot_dir: Path, timeout: float = 90) -> dict:
    """Look at the MLflow UI in headless Chromium: every run of ``run_names`` in the experiment's runs table
    (nested runs expanded) and ``model_name`` with ``alias`` on its registered-model page.

    Saves ``experiment.png`` and ``model.png`` (full page) in ``screenshot_dir`` and returns what was found;
    raises AssertionError with the page's visible text when something is missing.
    """
    import mlflow
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    experiment = mlflow.MlflowClient(base_url).get_experiment_by_name(experiment_name)
    assert experiment is not None, f"no experiment {experiment_name!r} on {base_url}"
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    shots = [screenshot_dir / "experiment.png", screenshot_dir / "model.png"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(timeout * 1000)
            page.add_init_script(NO_ASSISTANT)
            page.goto(RUNS_PAGE.format(base=base_url, experiment_id=experiment.experiment_id))
            try:
                runs_seen = _show_runs(page, run_names, timeout)
            except PlaywrightTimeout:
                runs_seen = []
            page.screenshot(path=shots[0], full_page=True)
            missing = [name for name in run_names if name not in runs_seen]
            assert not missing, f"runs {missing} not shown at {page.url}; page text: {_visible_text(page)}"

            page.goto(MODEL_PAGE.format(base=base_url, model_name=urllib.parse.quote(model_name)))
            heading = page.get_by_role("heading", name=model_name).first
            alias_tag = page.get_by_title(alias, exact=True).first
            try:
                heading.wait_for()
                alias_tag.wait_for()
            except PlaywrightTimeout:
                pass
            model_seen, alias_seen = heading.is_visible(), alias_tag.is_visible()
            alias_row = page.get_by_role("row").filter(has=alias_tag).first
            alias_row_text = " ".join(alias_row.inner_text().split()) if alias_seen else ""
            page.screenshot(path=shots[1], full_page=True)
            assert model_seen and alias_seen, (
                f"model {model_name!r} shown: {model_seen}, alias {alias!r} shown: {alias_seen} "
                f"at {page.url}; page text: {_visible_text(page)}")
        finally:
            browser.close()
    return {"runs_seen": runs_seen, "model_seen": model_seen, "alias_seen": alias_seen,
            "alias_row": alias_row_text, "screenshots": shots}
