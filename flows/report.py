"""Report: the time-series PNG and before/after quicklooks per AOI, linked from the run's artifact."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.common import open_run
from railwatch.adapters.store import open_store
from railwatch.brief import write_report
from railwatch.core import DETECTOR_VERSION


class ReportRequest(BaseModel):
    """Which AOIs and from when (the Prefect UI's run form)."""

    aoi_ids: list[str] = Field(default_factory=list, description="AOI ids; empty = every AOI with counts.")
    since: date | None = Field(None, description="First date shown; empty = the whole series.")


@flow(name="railwatch-report", log_prints=True, validate_parameters=True)
def report(request: ReportRequest | None = None) -> list[str]:
    """Write each AOI's report under RAILWATCH_HOME/reports; the files written."""
    request = request or ReportRequest()
    run = open_run(request.aoi_ids or None)
    store = open_store(run.store_url)
    folder = run.settings.home / "reports"
    lines, files = ["# railwatch report", ""], []
    for aoi in run.aois.values():
        if not run.db.scene_counts(aoi.id, DETECTOR_VERSION):
            lines.append(f"- {aoi.label} (`{aoi.id}`): no counts yet")
            continue
        made = write_report(aoi, run.db, store, DETECTOR_VERSION, request.since, folder,
                            run.settings.clip_buffer_m)
        paths = [p for p in (made.plot, made.before, made.after) if p is not None]
        files += [str(p) for p in paths]
        lines.append(f"- {aoi.label} (`{aoi.id}`): " + ", ".join(f"`{p}`" for p in paths))
    create_markdown_artifact("\n".join(lines), key="railwatch-report", description="Report files")
    return files
