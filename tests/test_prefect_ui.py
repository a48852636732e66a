"""The Prefect UI, used as an ops person would: `prefect server start` on loopback (the test
process's, from tests/conftest.py), the deployments served by `railwatch serve`, a backfill
triggered through the API with the form's parameters; then the run's state, logs and artifacts
read back through the API, and its page loaded in headless Chromium and saved as a screenshot
(RAILWATCH_UI_SCREENSHOT, else tmp)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railwatch.settings import Settings
from tests.cli_runs import SIM_END, SIM_START, PrefectServer, cli_env, home_with, process, simulated
from tests.test_backfill_plan import planned_task_runs

# slow; and its module fixtures are costly: all its tests on one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_prefect_ui")]
__all__ = ["simulated"]  # the fixture, imported for pytest


def chromium() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver, apt-installed when missing and possible."""
    if not shutil.which("chromedriver") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run("apt-get install -y -qq chromium chromium-driver || (apt-get update -qq && "
                       "apt-get install -y -qq chromium chromium-driver)", shell=True, check=False,
                       capture_output=True, timeout=900,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def server(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, dict[str, str]]:
    """The test process's Prefect server (its runs are read back by id, the deployments by
    name); (UI URL, the client's environment)."""
    home = tmp_path_factory.mktemp("ui-home")
    return prefect_server.url, cli_env(home, PREFECT_API_URL=prefect_server.api_url)


@pytest.fixture(scope="module")
def served(server: tuple[str, dict[str, str]], simulated: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    _, env = server
    home = home_with(simulated, tmp_path_factory.mktemp("ui-railwatch"))
    env = env | {"RAILWATCH_HOME": str(home)}
    with process([sys.executable, "-m", "railwatch.cli", "serve", "--watch-cron", ""], env,
                 home / "serve.log"):
        yield env | {"SERVE_LOG": str(home / "serve.log")}


async def run_backfill(env: dict[str, str]) -> dict[str, Any]:
    """Trigger the backfill deployment as the UI form would, wait for it, read what it left."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.deployments import run_deployment

    async with get_client() as client:
        for _ in range(600):  # the deployments appear once `railwatch serve` has started
            names = {d.name for d in await client.read_deployments()}
            if "backfill" in names:
                break
            await asyncio.sleep(0.5)
        assert "backfill" in names, Path(env["SERVE_LOG"]).read_text()
        run = await run_deployment(
            "railwatch-backfill/backfill", timeout=1800, poll_interval=2,
            parameters={"request": {"start": SIM_START, "end": SIM_END, "aoi_ids": ["tumangang"],
                                    "chunk_days": 3}})
        # the run's process sends its logs in batches (every 2 s) and drains them as it exits,
        # which may be after the server has recorded the final state: read until they settle
        by_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
        logs, settled = await client.read_logs(by_run), 0
        for _ in range(120):
            await asyncio.sleep(0.5)
            again = await client.read_logs(by_run)
            settled = settled + 1 if len(again) == len(logs) else 0
            logs = again
            if settled >= 10:  # nothing new for 5 s
                break
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        return {"run": run, "logs": [log.message for log in logs], "artifacts": artifacts,
                "task_runs": task_runs}


@pytest.fixture(scope="module")
def backfilled(served: dict[str, str]) -> dict[str, Any]:
    """The backfill run through the server's API (Prefect reads its settings once, at import:
    this process's client is pointed at the server explicitly, as a profile would)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served["PREFECT_API_URL"]}):
        return asyncio.run(run_backfill(served))


def test_backfill_from_the_deployment_completes_with_logs_and_artifacts(backfilled: dict[str, Any]) -> None:
    run = backfilled["run"]
    assert run.state.is_completed(), run.state
    assert any("chunk 2/2" in m for m in backfilled["logs"]), backfilled["logs"][-20:]
    by_type = {a.type: a for a in backfilled["artifacts"]}
    assert by_type["progress"].data == 100.0
    assert by_type["table"].key == "railwatch-counts"
    assert "markdown" in by_type
    # as many task runs as the backfill plan says: packs, not one task per scene and step
    assert len(backfilled["task_runs"]) == planned_task_runs(1, 6, Settings(backfill_chunk_days=3))


def test_the_flow_run_page_shows_the_run_and_its_artifact(
        server: tuple[str, dict[str, str]], backfilled: dict[str, Any], tmp_path: Path) -> None:
    found = chromium()
    if found is None:
        pytest.skip("chromium + chromedriver are not installed and cannot be apt-installed here")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    run = backfilled["run"]
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300"):
        options.add_argument(arg)
    shot = Path(os.environ.get("RAILWATCH_UI_SCREENSHOT", tmp_path / "flow-run.png"))
    with webdriver.Chrome(options=options, service=Service(found[1])) as browser:
        browser.get(f"{url}/runs/flow-run/{run.id}")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: run.name in b.find_element(By.TAG_NAME, "body").text)
        tab = wait.until(lambda b: b.find_element(
            By.XPATH, "//li[contains(@class, 'p-tab')][normalize-space(.)='Artifacts']"))
        tab.click()
        wait.until(lambda b: "railwatch-backfill-progress" in b.find_element(By.TAG_NAME, "body").text)
        text = browser.find_element(By.TAG_NAME, "body").text
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
    assert run.name in text and "Completed" in text
    assert "railwatch-counts" in text and "railwatch-backfill-progress" in text
    assert shot.stat().st_size > 10_000
