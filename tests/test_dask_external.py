"""Scale-out: a backfill through a real, separate Dask scheduler and two worker processes on
loopback (`RAILWATCH_DASK_ADDRESS`), resumed chunk by chunk from the scene registry. As the
README says to run them: the CLI and the workers report to one Prefect server (the test
process's, tests/conftest.py; without its URL each worker would start an ephemeral API of its own).

The scheduler runs a probe (tests/dask_probe.py) that records the pickled size of every task it
receives and the worker that ran it: clips must be read by the workers from the store, so what
goes through the scheduler is keys and refs, far smaller than any clip.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from tests.cli_runs import (
    REPO,
    SIM_END,
    SIM_START,
    PrefectServer,
    cli_env,
    dask_cluster,
    home_with,
    run_cli,
    scene_summary,
    simulated,
)

# slow; and its module fixtures are costly: all its tests on one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_dask_external")]
__all__ = ["simulated"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def scheduler(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[str, Path, list[str]]]:
    """`dask scheduler` + 2 `dask worker` processes; (address, probe file, worker addresses)."""
    logs = tmp_path_factory.mktemp("dask")
    probe = logs / "probe.jsonl"
    env = cli_env(logs, RAILWATCH_DASK_PROBE=str(probe), PREFECT_API_URL=prefect_server.api_url)
    preload = ("--preload", str(REPO / "tests" / "dask_probe.py"))
    with dask_cluster(logs, env, scheduler_args=preload) as address, Client(address, timeout=120) as client:
        yield address, probe, list(client.scheduler_info()["workers"])


def probe_lines(probe: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in probe.read_text().splitlines()]


def test_backfill_runs_on_an_external_scheduler_and_resumes(
        scheduler: tuple[str, Path, list[str]], prefect_server: PrefectServer, simulated: Path,
        tmp_path: Path) -> None:
    address, probe, workers = scheduler
    home = home_with(simulated, tmp_path)
    env = cli_env(home, RAILWATCH_DASK_ADDRESS=address, PREFECT_API_URL=prefect_server.api_url)
    backfill = ["backfill", "--aoi", "tumangang", "--chunk-days"]

    # a first run covers the first half, as if a longer backfill had crashed after its first
    # chunk; in chunks of 2 days, so its second chunk is clipped ahead while the first finishes
    first = scene_summary(run_cli([*backfill, "2", "--start", SIM_START, "--end", "2023-09-10"], env).stdout)
    assert first == {"found": 3, "done": 0, "processed": 3, "failed": 0}
    arrived = [(line["step"], line["user_priority"]) for line in probe_lines(probe) if "step" in line]
    # the second chunk's clips reached the scheduler before the first chunk's measurements, at a
    # lower priority (they fill the workers' gaps); every other step at the default priority
    assert [s for s, _ in arrived][:4] == ["clip-scenes"] * 3 + ["index-clips"], arrived
    assert [p for s, p in arrived if s == "clip-scenes"] == [0, 0, -1], arrived
    assert {p for s, p in arrived if s != "clip-scenes"} == {0}, arrived
    rerun = scene_summary(run_cli([*backfill, "3", "--start", SIM_START, "--end", SIM_END], env).stdout)
    assert rerun == {"found": 6, "done": 3, "processed": 3, "failed": 0}  # the done half is skipped

    with sqlite3.connect(home / "counts.db") as con:
        rows = con.execute("SELECT scene_id, cars FROM scene_counts").fetchall()
        statuses = {s for (s,) in con.execute("SELECT status FROM scenes")}
    assert len(rows) == 6 and statuses == {"detected"}
    assert any(cars > 0 for _, cars in rows)

    lines = probe_lines(probe)
    ran_on = {line["worker"] for line in lines if "worker" in line}
    assert ran_on and ran_on <= set(workers)  # every task ran on the external workers
    clips = [p.stat().st_size for p in (home / "store" / "tumangang").rglob("image.tif")]
    assert clips, "no clips in the store"
    largest_task = max(line["spec_bytes"] for line in lines if "spec_bytes" in line)
    largest_result = max(line["result_bytes"] or 0 for line in lines if "worker" in line)
    # tasks and results are keys and refs: each far smaller than one clip's image
    assert 10 * largest_task < min(clips) and 10 * largest_result < min(clips), (largest_task, min(clips))
