"""Watch: process the scenes published since the last poll (scheduled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow

from flows.common import dask_task_runner, process_range
from railwatch.models import RunSummary


@flow(name="railwatch-watch", task_runner=dask_task_runner(), log_prints=True)
def watch(aoi_ids: list[str] | None = None, lookback_days: int = 14) -> RunSummary:
    """Scenes acquired in the last `lookback_days` that are not done yet (the registry dedups)."""
    end = datetime.now(UTC)
    return process_range(aoi_ids, end - timedelta(days=lookback_days), end)
