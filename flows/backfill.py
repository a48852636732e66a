"""Backfill: process every scene over the AOIs acquired in a date range, chunk by chunk.

Each chunk's outcome is in the scene registry before the next chunk's, so a crashed or cancelled
backfill, run again, skips what is done; the flow run's progress artifact shows the chunks done.
The next chunk is searched and clipped ahead while one is measured, detected and stored (its
clips wait in the store, unregistered, until their chunk's turn: a rerun clips them again).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from pydantic import BaseModel, Field, model_validator

from flows.batching import date_chunks
from flows.common import (
    AHEAD,
    BEHIND,
    finish_window,
    log_totals,
    open_run,
    publish,
    render_quicklooks,
    settled,
    start_window,
)
from flows.runner import dask_task_runner
from railwatch.models import RunSummary
from railwatch.progress import report
from railwatch.settings import get_settings


class BackfillRequest(BaseModel):
    """What to backfill: the Prefect UI renders this as the run form, and validates it."""

    start: date = Field(description="First acquisition date.")
    end: date = Field(description="Last acquisition date (inclusive).")
    aoi_ids: list[str] = Field(default_factory=list,
                               description="AOI ids; empty = every AOI in the registry.")
    sources: list[str] = Field(default_factory=list, description="Catalog sources among RAILWATCH_CATALOGS "
                               "(e.g. 'simulator', 'planet'); empty = all configured.")
    force: bool = Field(False, description="Reprocess scenes already done.")
    chunk_days: int | None = Field(None, ge=1, le=366, description="Days per chunk (the unit of "
                                   "resumption); empty = RAILWATCH_BACKFILL_CHUNK_DAYS.")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillRequest:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def progress_artifact(total: int) -> UUID | None:
    """The run's progress artifact (none outside a flow run's API context, e.g. in unit tests)."""
    made = create_progress_artifact(0.0, key="railwatch-backfill-progress",
                                    description=f"Backfill chunks done (of {total})")
    return made if isinstance(made, UUID) else None


@flow(name="railwatch-backfill", task_runner=dask_task_runner(), log_prints=True, validate_parameters=True)
def backfill(request: BackfillRequest) -> RunSummary:
    """Scenes acquired from `request.start` to `request.end`, chunk by chunk; done scenes are skipped
    unless `force`."""
    logger = get_run_logger()
    run = open_run(request.aoi_ids or None, request.sources or None)
    chunks = date_chunks(request.start, request.end, request.chunk_days or get_settings().backfill_chunk_days)
    summary = RunSummary(aois=list(run.aois))
    progress = progress_artifact(len(chunks))
    report("chunks", 0, len(chunks))
    windows = [(day_start(first), day_start(last + timedelta(days=1))) for first, last in chunks]
    with settled(run.batches):  # a failing run ends when its batches have
        ahead = start_window(run, *windows[0], summary, force=request.force) if windows else []
        for done, (first, last) in enumerate(chunks, start=1):
            before, clipping = summary.processed, ahead
            if done < len(chunks):  # clipped while this chunk is finished; registered after it
                ahead = start_window(run, *windows[done], summary, force=request.force, priority=AHEAD)
            finish_window(run, clipping, summary)
            if done < len(chunks):
                # the quicklooks of the transitions the counts so far make, rendered while the next
                # chunks are worked on, when a worker has nothing else, not all at the end (a year
                # of 20 AOIs: ≈ 1,400); exactly those publishing would render: chunks are stored in
                # acquisition order, and an episode's transitions depend only on the series up to
                # their scene (the last chunk's go with publishing)
                render_quicklooks(run, priority=BEHIND)
            logger.info("chunk %d/%d (%s … %s): %d scene(s) processed", done, len(chunks), first, last,
                        summary.processed - before)
            if progress is not None:
                update_progress_artifact(progress, 100.0 * done / len(chunks))
            report("chunks", done, len(chunks))
        log_totals(summary)
        publish(run, summary)
    report("done", 1, 1)
    return summary
