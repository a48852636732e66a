"""Flows run in-process by the CLI: the backfill request from command-line options, and one
rich progress bar per stage (date chunks, then each stage's Dask batches)."""

from __future__ import annotations

import signal
from datetime import date
from typing import Any

from rich.progress import Progress

from railwatch.errors import InvalidInput


def backfill_request(start: date, end: date, aoi_ids: list[str] | None = None,
                     sources: list[str] | None = None, force: bool = False,
                     chunk_days: int | None = None) -> Any:
    """The flow's typed request, validated as the Prefect UI's form is."""
    from pydantic import ValidationError

    from flows.backfill import BackfillRequest

    try:
        return BackfillRequest(start=start, end=end, aoi_ids=aoi_ids or [], sources=sources or [],
                               force=force, chunk_days=chunk_days)
    except ValidationError as exc:
        raise InvalidInput(f"bad backfill request: {exc.errors()[0]['msg']}") from None


def start_embedded_api() -> None:
    """Start Prefect's embedded API server now, out of Ctrl-C's reach, when no PREFECT_API_URL
    is set. Prefect would start it on first use: Ctrl-C then stopped it with the run, and the
    interrupted run spent a minute or two failing to report its state (exit 1, a traceback).
    Prefect still stops it at exit."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    # blocked while it is spawned: a blocked signal stays blocked across exec, and uvicorn's own
    # handlers do not unblock it (SIGTERM, which Prefect stops it with, still works)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        SubprocessASGIServer().start()  # the instance Prefect's clients use (no port given)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def run_flow(name: str, progress: Progress, **params: Any) -> Any:
    """Run the backfill or watch flow in this process, showing its progress on `progress`."""
    from flows.backfill import backfill
    from flows.watch import watch
    from railwatch.progress import listening

    flow_fn: Any = backfill if name == "backfill" else watch
    bars: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage == "done":
            return
        if stage not in bars:
            label = "date chunks" if stage == "chunks" else f"{stage} (Dask batches)"
            bars[stage] = progress.add_task(label, total=total)
        elif stage != "chunks" and done == 0:  # a new chunk: the stage's bar starts over
            progress.reset(bars[stage], total=total)
        progress.update(bars[stage], completed=done, total=total)

    start_embedded_api()
    with listening(on_progress):
        return flow_fn(**params)
