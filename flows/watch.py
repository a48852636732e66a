"""Watch: process the scenes published since the last poll (scheduled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow

from flows.common import process_range
from flows.runner import dask_task_runner
from railwatch.models import RunSummary


@flow(name="railwatch-watch", task_runner=dask_task_runner(), log_prints=True)
def watch(aoi_ids: list[str] | None = None,
          lookback_days: int = 60) -> RunSummary:
    """Scenes published since the last poll (acquired in the last `lookback_days`: a scene may be
    published weeks after acquisition), and any registered scene not done yet.

    Args:
        aoi_ids: AOI ids; empty = every AOI in the registry.
        lookback_days: Scenes acquired this many days back at most.
    """
    end = datetime.now(UTC)
    return process_range(aoi_ids, end - timedelta(days=lookback_days), end, watch=True)
