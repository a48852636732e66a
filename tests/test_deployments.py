"""prefect.yaml and `railwatch serve` describe the same deployments (infra/: test_infra.py)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow

from flows.serve import WATCH_CRON, deployments

REPO = Path(__file__).resolve().parents[1]


def project() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return loaded


def test_prefect_yaml_entrypoints_are_flows() -> None:
    names = set()
    for d in project()["deployments"]:
        path, attr = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)
        assert isinstance(flow, Flow), d["entrypoint"]
        names.add((flow.name, d["name"]))
    assert names == {("railwatch-watch", "watch"), ("railwatch-backfill", "backfill"),
                     ("railwatch-report", "report")}


def test_serve_offers_the_same_deployments_and_schedule() -> None:
    served = {d.name: d for d in deployments()}
    assert set(served) == {d["name"] for d in project()["deployments"]}
    (schedule,) = served["watch"].schedules
    assert schedule.schedule.cron == WATCH_CRON
    watch = next(d for d in project()["deployments"] if d["name"] == "watch")
    assert watch["schedules"][0]["cron"] == WATCH_CRON
    assert not served["backfill"].schedules and not served["report"].schedules
    assert deployments(watch_cron=None)[0].schedules == []

