"""prefect.yaml and `railwatch serve` describe the same deployments (infra/: test_infra.py)."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from flows.serve import WATCH_CRON, deployments

REPO = Path(__file__).resolve().parents[1]


@cache  # read once: collection (parametrize), these tests and test_infra share it
def project() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return loaded


def test_prefect_yaml_entrypoints_are_flows() -> None:
    names = set()
    for d in project()["deployments"]:
        flow = load_flow_from_entrypoint(d["entrypoint"])  # as a worker loads it
        assert isinstance(flow, Flow), d["entrypoint"]
        names.add((flow.name, d["name"]))
    assert names == {("railwatch-watch", "watch"), ("railwatch-backfill", "backfill"),
                     ("railwatch-report", "report")}


UNPICKLE = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()).name)"


@pytest.mark.parametrize("entrypoint", [d["entrypoint"] for d in project()["deployments"]])
def test_deployed_flow_unpickles_in_another_process(entrypoint: str, tmp_path: Path) -> None:
    """Every Dask task carries the flow run's context, the flow included: a separate Dask
    scheduler (compose, Kubernetes) must import the flow's module by name. A file entrypoint
    (flows/backfill.py:backfill) loads it as a module `backfill` that only the flow run's process
    has, and every deployed run on an external cluster failed (found by infra/check-image.sh)."""
    flow = load_flow_from_entrypoint(entrypoint)
    done = subprocess.run([sys.executable, "-c", UNPICKLE], input=cloudpickle.dumps(flow),
                          cwd=tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == flow.name


def test_serve_offers_the_same_deployments_and_schedule() -> None:
    served = {d.name: d for d in deployments()}
    assert set(served) == {d["name"] for d in project()["deployments"]}
    (schedule,) = served["watch"].schedules
    assert schedule.schedule.cron == WATCH_CRON
    watch = next(d for d in project()["deployments"] if d["name"] == "watch")
    assert watch["schedules"][0]["cron"] == WATCH_CRON
    assert not served["backfill"].schedules and not served["report"].schedules
    assert deployments(watch_cron=None)[0].schedules == []

