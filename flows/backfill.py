"""Backfill: process every scene over the AOIs acquired in a date range (resumable)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from prefect import flow

from flows.common import dask_task_runner, process_range
from railwatch.models import RunSummary


@flow(name="railwatch-backfill", task_runner=dask_task_runner(), log_prints=True)
def backfill(start: date, end: date, aoi_ids: list[str] | None = None,
             force: bool = False) -> RunSummary:
    """Scenes acquired from `start` to `end` inclusive; done scenes are skipped unless `force`."""
    return process_range(
        aoi_ids,
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
        force=force,
    )
