"""The `railwatch` command line. `main(argv) -> int` wraps the typer app so errors become exit codes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from railwatch.cli_db import db_app
from railwatch.cli_search import aoi_and_db, out, parse_range, search_cmd
from railwatch.cli_views import show_alerts, show_counts, write_report_files, writing
from railwatch.errors import RailwatchError
from railwatch.interrupts import interrupted, noting_ctrl_c

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Watch rail yards in satellite imagery: count rail cars, flag surges.")
app.add_typer(db_app, name="db")
console = Console(stderr=True)

DEMO_AOI = "tumangang"
DEMO_START, DEMO_END = date(2023, 9, 1), date(2023, 10, 10)
DEMO_SCENE_KM = (4.0, 3.6)  # ≈4× the AOI's area: clipping stays real, the demo stays under 3 minutes


def _quiet_prefect(verbose: bool) -> None:
    """Prefect defaults that suit an offline machine (set before prefect is imported)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        yield progress


def _run_flow(name: str, **params: Any) -> Any:
    """Run a flow in-process with a progress bar per stage."""
    from railwatch.runs import run_flow

    with _progress() as progress:
        return run_flow(name, progress, **params)


@app.command()
def simulate(
    aoi: Annotated[Path, typer.Option(help="AOI file to simulate scenes over.")] = Path(
        "aois/tumangang.geojson"),
    start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")] = str(DEMO_START),
    end: Annotated[str, typer.Option(help="Last date, inclusive.")] = str(DEMO_END),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same pixels).")] = 2023,
    workers: Annotated[int, typer.Option(help="Rendering processes.", min=1)] = 2,
    scene_km: Annotated[tuple[float, float] | None, typer.Option(
        help="Scene footprint, km (x, y). Default: 5 × 4.5 at 3 m; at a finer GSD the AOI's "
             "extent plus 0.37 km on every side.")] = None,
    gsd: Annotated[float | None, typer.Option(
        help="Pixel size, m (3: PlanetScope-like; 0.5: SkySat-like). Default: the AOI's gsd_m, "
             "else 3.", min=0.1)] = None,
) -> None:
    """Publish simulated PlanetScope-like (or, finer, SkySat-like) scenes + STAC items over an
    AOI (the demo's catalog)."""
    from railwatch.aoi import load_aoi
    from railwatch.settings import get_settings
    from railwatch.simulate import default_scene_size_m, publish_season

    settings = get_settings()
    area = load_aoi(aoi, settings.max_aoi_km2)
    first, last = parse_range(start, end)
    gsd_m = gsd if gsd is not None else area.gsd_m
    size_m = ((scene_km[0] * 1000, scene_km[1] * 1000) if scene_km is not None
              else default_scene_size_m(area, gsd_m))
    folder = settings.simulator_dir / area.id
    with _progress() as progress:
        bar = progress.add_task(f"simulating {gsd_m:g} m scenes", total=(last - first).days + 1)
        scenes = publish_season(area, folder, first, last, seed=seed, workers=workers,
                                scene_size_m=size_m, gsd_m=gsd_m,
                                on_scene=lambda _s: progress.advance(bar))
    out.print(f"{len(scenes)} scene(s) of {size_m[0] / 1000:.2f} × {size_m[1] / 1000:.2f} km at "
              f"{gsd_m:g} m over {area.id} in the STAC collection {folder / 'collection.json'}")


@app.command(name="backfill")
def backfill_cmd(
    start: Annotated[str, typer.Option(help="First acquisition date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last acquisition date, inclusive.")],
    aoi: Annotated[list[str] | None, typer.Option(help="AOI id (repeatable); all by default.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="Catalog source among RAILWATCH_CATALOGS (repeatable); all by default.")] = None,
    force: Annotated[bool, typer.Option(help="Reprocess scenes already done.")] = False,
    chunk_days: Annotated[int | None, typer.Option(min=1,
        help="Days per chunk (default RAILWATCH_BACKFILL_CHUNK_DAYS).")] = None,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's logs.")] = False,
) -> None:
    """Process every scene over the AOIs in a date range, chunk by chunk (resumable: a rerun skips
    done scenes)."""
    _quiet_prefect(verbose)
    _print_summary(_run_backfill(*parse_range(start, end), aoi, source, force, chunk_days))


def _run_backfill(start: date, end: date, aoi_ids: list[str] | None = None,
                  sources: list[str] | None = None, force: bool = False,
                  chunk_days: int | None = None) -> Any:
    from railwatch.preflight import preflight
    from railwatch.runs import backfill_request

    preflight(aoi_ids, sources)  # bad settings: one line now, before Prefect and Dask start
    request = backfill_request(start, end, aoi_ids, sources, force, chunk_days)
    return _run_flow("backfill", request=request)


@app.command()
def serve(
    watch_cron: Annotated[str, typer.Option(help="Cron of the scheduled watch ('' = unscheduled).")
                          ] = "0 */6 * * *",
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once in this process.")] = None,
) -> None:
    """Serve the watch, backfill and report deployments from this process (single machine; needs
    PREFECT_API_URL of a running `prefect server start`)."""
    _quiet_prefect(verbose=True)
    from flows.serve import serve_all

    serve_all(watch_cron or None, limit)


@app.command(name="watch")
def watch_cmd(
    aoi: Annotated[list[str] | None, typer.Option(help="AOI id (repeatable); all by default.")] = None,
    lookback_days: Annotated[int, typer.Option(help="Acquired this many days back at most.",
                                               min=0)] = 60,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's logs.")] = False,
) -> None:
    """Process scenes that are new since the last poll."""
    _quiet_prefect(verbose)
    from railwatch.preflight import preflight

    preflight(aoi or None)
    _print_summary(_run_flow("watch", aoi_ids=aoi or None, lookback_days=lookback_days))


@app.command()
def detect(
    aoi: Annotated[Path, typer.Option(help="AOI file (spec/aoi-format.md).")],
    image: Annotated[str, typer.Option(help="GeoTIFF: 4 bands b,g,r,nir or 3 bands b,g,r.")],
    reference: Annotated[str | None, typer.Option(help="Image of the yard when (nearly) empty.")] = None,
    mask: Annotated[str | None, typer.Option(help="Mask: first band 1 = clear.")] = None,
    reference_mask: Annotated[str | None, typer.Option(help="Mask of the reference.")] = None,
    format: Annotated[str, typer.Option(help="json or table.")] = "json",
    sun_azimuth: Annotated[float | None, typer.Option(
        help="Sun azimuth of the image in degrees from north (scene metadata, e.g. Planet's "
             "sun_azimuth): tells on which side car shadows fall.")] = None,
    sun_elevation: Annotated[float | None, typer.Option(
        help="Sun elevation in degrees (scene metadata): how far car shadows reach.")] = None,
) -> None:
    """Measure one image: occupied metres and cars per track, as JSON on stdout."""
    import json

    from railwatch.detect import detect_files
    from railwatch.errors import InvalidInput

    if format not in ("json", "table"):
        raise InvalidInput(f"--format must be json or table, not {format!r}")
    if sun_azimuth is not None and not 0.0 <= sun_azimuth <= 360.0:
        raise InvalidInput(f"--sun-azimuth must be between 0 and 360 degrees, not {sun_azimuth}")
    if sun_elevation is not None and not 0.0 < sun_elevation <= 90.0:
        raise InvalidInput(f"--sun-elevation must be above 0 and at most 90 degrees, not {sun_elevation}")
    result = detect_files(aoi, image, reference, mask, reference_mask, sun_azimuth_deg=sun_azimuth,
                          sun_elevation_deg=sun_elevation)
    if format == "json":
        sys.stdout.write(json.dumps(result) + "\n")
        return
    from rich.table import Table

    table = Table(title=f"{result['aoi']} at {result['gsd_m']} m")
    for column in ("track", "length m", "occupied m", "cars", "interval", "valid"):
        table.add_column(column, justify="left" if column == "track" else "right")
    for t in [*result["tracks"], {"id": "total", "length_m": None, **result["total"]}]:
        table.add_row(t["id"], "" if t["length_m"] is None else f"{t['length_m']:.0f}",
                      f"{t['occupied_m']:.0f}", str(t["cars"]), f"{t['cars_low']}–{t['cars_high']}",
                      f"{t['valid_fraction']:.2f}")
    out.print(table)
    quality = result["quality"]
    out.print(f"shift {quality['shift_m']} m; flags: {', '.join(quality['flags']) or '-'}")


@app.command()
def counts(aoi: Annotated[str, typer.Option(help="AOI id.")] = DEMO_AOI) -> None:
    """Print the stored counts of an AOI and write its plot."""
    show_counts(aoi)


app.command(name="search")(search_cmd)


@app.command()
def export(
    aoi: Annotated[str, typer.Option(help="AOI id.")],
    format: Annotated[str, typer.Option(help="csv or parquet.")] = "csv",
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Output file (default RAILWATCH_HOME/exports/<aoi>-counts.<format>).")] = None,
) -> None:
    """Write the stored counts of an AOI (one row per scene, with surge flags) as CSV or Parquet."""
    from railwatch.brief import current_counts, export_counts
    from railwatch.core import DETECTOR_VERSION

    settings, area, db = aoi_and_db(aoi)
    path = out_file or settings.home / "exports" / f"{area.id}-counts.{format}"
    rows = current_counts(area, db, DETECTOR_VERSION)
    with writing(path):
        out.print(f"{len(rows)} scene(s) -> {export_counts(rows, path, format)}")


@app.command()
def report(
    aoi: Annotated[str, typer.Option(help="AOI id.")] = DEMO_AOI,
    since: Annotated[str | None, typer.Option(help="First date shown (YYYY-MM-DD); all by default.")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Folder (default RAILWATCH_HOME/reports).")] = None,
) -> None:
    """Write the time-series PNG and before/after quicklooks of the newest alert's peak scene."""
    write_report_files(aoi, since, out_dir)


@app.command()
def demo(
    workers: Annotated[int, typer.Option(help="Dask workers and rendering processes.", min=1)] = 2,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's logs.")] = False,
) -> None:
    """Simulate the Sept–Oct 2023 Tumangang season and run it through the whole pipeline."""
    _quiet_prefect(verbose)
    os.environ.setdefault("RAILWATCH_DASK_WORKERS", str(workers))
    os.environ.setdefault("RAILWATCH_WEBHOOK_MAX_AGE_DAYS", "0")  # the demo replays 2023 on purpose
    from railwatch.settings import get_settings

    settings = get_settings()
    if settings.catalogs != ["simulator"]:
        raise RailwatchError("the demo reads the built-in simulator; unset RAILWATCH_CATALOGS")
    demo_aoi = settings.aoi_dir / f"{DEMO_AOI}.geojson"
    if not demo_aoi.is_file():
        raise RailwatchError(
            f"the demo reads {demo_aoi.resolve()}, which is not there: run it from the railwatch "
            f"checkout (its aois/ folder), or set RAILWATCH_AOI_DIR to that folder")
    wall = time.perf_counter()
    console.rule("[bold]railwatch demo: Tumangang rail facility, 2023-09-01 … 2023-10-10")
    simulate(aoi=demo_aoi, start=str(DEMO_START),
             end=str(DEMO_END), seed=2023, workers=workers, scene_km=DEMO_SCENE_KM)
    simulated = time.perf_counter() - wall
    from railwatch.adapters.counts import CountsStore
    from railwatch.aoi import load_aoi
    from railwatch.brief import recount_hint
    from railwatch.core import DETECTOR_VERSION

    # counted before by another detector version (an upgrade): count the season again
    stale = recount_hint(load_aoi(demo_aoi), CountsStore(settings.db_url), DETECTOR_VERSION)
    summary = _run_backfill(DEMO_START, DEMO_END, [DEMO_AOI], force=stale is not None)
    show_counts(DEMO_AOI)
    show_alerts(DEMO_AOI)
    write_report_files(DEMO_AOI)
    from railwatch.adapters.store import open_store

    out.print(f"clips:  {open_store(settings.store_url).uri(DEMO_AOI)}/YYYY/MM/DD/<scene>/")
    out.print(f"counts: {settings.db_url} (tables scene_counts, track_counts, scenes)")
    _print_summary(summary, simulated=simulated, wall=time.perf_counter() - wall)


def _print_summary(summary: Any, simulated: float | None = None, wall: float | None = None) -> None:
    n = max(summary.processed, 1)
    split = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    per_scene = ", ".join(f"{k} {v / n * 1000:.0f} ms" for k, v in summary.scene_seconds.items())
    out.print(f"scenes: {summary.found} found ({summary.discovered} new, {summary.revised} new "
              f"version(s)), {summary.skipped_done} already done, "
              f"{summary.processed} processed, {len(summary.failed)} failed")
    if summary.redetected:
        out.print(f"  {summary.redetected} done scene(s) counted again: an earlier scene arrived late")
    if summary.measured_with_clip:
        out.print(f"  {summary.measured_with_clip} measured as they were clipped (reference final)")
    for aoi_id, scene_id, reason in summary.failed:
        out.print(f"  [red]failed[/] {aoi_id}/{scene_id}: {reason}")
    for aoi_id, item_id, reason in summary.skipped:
        out.print(f"  [yellow]catalog item skipped[/] {aoi_id}/{item_id}: {reason}")
    out.print(f"stages (wall): {split}")
    if summary.processed:
        out.print(f"per scene (worker time): {per_scene}")
    if wall is not None:
        sim = f" (simulation {simulated:.1f}s)" if simulated is not None else ""
        out.print(f"[bold]demo wall time {wall:.1f}s{sim}[/]")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turn railwatch errors into a one-line message and exit 2, and
    Ctrl-C into exit 130, whatever exception it became on the way (`railwatch.interrupts`)."""
    with noting_ctrl_c():
        try:
            code = _main(argv)
        except BaseException:
            if not interrupted():
                raise
            code = 130
    if code == 130:
        sys.stderr.write("railwatch: interrupted; a rerun resumes where this one stopped\n")
    return code


def _main(argv: list[str] | None) -> int:
    try:
        code = app(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
        if isinstance(code, int) and code:
            return code  # 130: Ctrl-C, which typer turns into this exit code
    except RailwatchError as exc:
        sys.stderr.write(f"railwatch: error: {exc}\n")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        return 130
    except Exception as exc:
        database = sys.modules.get("sqlalchemy.exc")
        if database is not None and isinstance(exc, database.DatabaseError):
            # e.g. a damaged SQLite file ("database disk image is malformed"), a read-only one
            sys.stderr.write(f"railwatch: error: the counts database failed: {exc.orig}; check "
                             "RAILWATCH_DATABASE_URL, and restore a damaged database from its "
                             "backup (README: The counts database)\n")
            return 2
        # a usage error (click's, which typer vendors: matched by what it offers), one line
        message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if message is None or not isinstance(code, int):
            raise
        ctx, text = getattr(exc, "ctx", None), message()
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if text:  # (no arguments at all: the help was shown, nothing to add)
            sys.stderr.write(f"railwatch: error: {text}{hint}\n")
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
