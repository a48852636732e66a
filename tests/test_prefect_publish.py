"""Artifacts and events of a run, read back through a real (test-harness) Prefect API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.worker import EventsWorker
from prefect.testing.utilities import prefect_test_harness

from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import CountsStore
from railwatch.settings import get_settings
from tasks.publish import publish_alerts, publish_run_artifacts
from tests.alert_series import QUIET, VERSION, demo_aoi, store_series

pytestmark = pytest.mark.xdist_group("test_prefect_publish")  # its costly module fixture: one xdist worker


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[None]:
    # the process's event worker is shared by every API URL: one left running by an earlier
    # test's in-process runs would send this module's events to that test's server
    EventsWorker.drain_all()
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RAILWATCH_HOME", str(tmp_path))
    monkeypatch.delenv("RAILWATCH_WEBHOOK_URLS", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@flow(name="railwatch-publish-test")
def publish_flow(db_url: str, store_url: str) -> None:
    published = [publish_alerts(demo_aoi(), CountsStore(db_url), store_url, VERSION)]
    publish_run_artifacts(published, [])


def surge_events(client: Any) -> list[Any]:
    """The railwatch.surge.* events about the demo AOI, once the API has stored them."""
    query = EventFilter(event=EventNameFilter(prefix=["railwatch.surge."]),
                        resource=EventResourceFilter(id=["railwatch.aoi.tumangang"]))
    for _ in range(100):  # events are written asynchronously by the server
        events = client.read_events(filter=query, limit=50).events
        if len(events) >= 3:
            return sorted(events, key=lambda e: e.payload["episode"]["sequence"])
        time.sleep(0.1)
    return list(client.read_events(filter=query, limit=50).events)


def test_run_publishes_artifacts_and_one_event_per_transition(prefect_api: None, settings_env: Path) -> None:
    settings = get_settings()
    db = CountsStore(settings.db_url)
    store_series(db, demo_aoi(), [*QUIET, 35, 45, 40, 11, 12, 10])  # opened, updated, closed
    state = publish_flow(settings.db_url, settings.store_url, return_state=True)
    assert state.is_completed()
    rerun = publish_flow(settings.db_url, settings.store_url, return_state=True)  # emits nothing new
    EventsWorker.drain_all()

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        by_key = {a.key: a for a in artifacts}
        assert {"railwatch-counts", "railwatch-run", "railwatch-plot-tumangang"} <= set(by_key)
        table = by_key["railwatch-counts"]
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert table.type == "table" and len(rows) == 16
        assert [r["flag"] for r in rows if r["flag"]] == ["SURGE 1.8× max", "SURGE 2.2× max",
                                                          "SURGE 2.0× max"]
        run_md = str(by_key["railwatch-run"].data)
        assert "alert episodes: 1 (0 open)" in run_md and "surge over on 2023-09-16" in run_md
        plot_link = str(by_key["railwatch-plot-tumangang"].data)  # Prefect stores links as markdown
        assert "file://" in plot_link and plot_link.rstrip(")").endswith("reports/cars.png")
        events = surge_events(client)

    assert [e.event for e in events] == ["railwatch.surge.opened", "railwatch.surge.updated",
                                         "railwatch.surge.closed"]  # the rerun added none
    assert events[0].resource.id == "railwatch.aoi.tumangang"
    assert events[0].payload["scene"]["cars"] == 35 and events[1].payload["scene"]["cars"] == 45
    assert rerun.is_completed() and not AlertStore(db).unemitted("tumangang")
    assert (settings_env / "store" / "tumangang" / "reports" / "cars.png").is_file()
