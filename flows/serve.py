"""`railwatch serve`: the deployments of prefect.yaml, served from one local process.

For a single-machine install: no work pool or worker needed; the process polls the Prefect API
for scheduled and UI-triggered runs of its deployments and runs them itself (their Dask work
still goes to the configured cluster). A work pool + worker is the production path (README).
"""

from __future__ import annotations

from typing import Any

from prefect import serve

from flows.backfill import backfill
from flows.report import report
from flows.watch import watch

WATCH_CRON = "0 */6 * * *"  # as in prefect.yaml


def deployments(watch_cron: str | None = WATCH_CRON) -> list[Any]:
    """watch (scheduled unless `watch_cron` is None), backfill and report (run from the UI form)."""
    return [
        watch.to_deployment(name="watch", cron=watch_cron, parameters={"lookback_days": 60},
                            description="Scenes published since the last poll, every AOI."),
        backfill.to_deployment(name="backfill", description="Every scene of a date range, chunk by "
                               "chunk (resumable: done scenes are skipped)."),
        report.to_deployment(name="report", description="Time-series plots and quicklooks per AOI."),
    ]


def serve_all(watch_cron: str | None = WATCH_CRON, limit: int | None = None) -> None:
    """Serve until interrupted; `limit` caps concurrent flow runs of this process."""
    serve(*deployments(watch_cron), limit=limit, print_starting_message=True)
