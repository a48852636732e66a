"""`railwatch search` (what a backfill would process or skip, registering nothing) and the small
helpers the CLI's per-AOI commands share."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console

from railwatch.errors import ConfigError

out = Console(width=None if sys.stdout.isatty() else 120)  # tables stay legible in logs and pipes


def parse_day(value: str, flag: str) -> date:
    """A YYYY-MM-DD option value, or a one-line error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not a date; use YYYY-MM-DD") from None


def parse_range(start: str, end: str) -> tuple[date, date]:
    """--start and --end as dates, the end not before the start."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise ConfigError(f"--end {last} is before --start {first}")
    return first, last


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def aoi_and_db(aoi_id: str) -> tuple[Any, Any, Any]:
    from railwatch.adapters.counts import CountsStore
    from railwatch.aoi import load_registry, select_aois
    from railwatch.settings import get_settings

    settings = get_settings()
    (area,) = select_aois(load_registry(settings.aoi_dir, settings.max_aoi_km2), [aoi_id])
    return settings, area, CountsStore(settings.db_url)


def search_cmd(
    aoi: Annotated[str, typer.Option(help="AOI id.")],
    start: Annotated[str, typer.Option(help="First acquisition date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last acquisition date, inclusive.")],
    source: Annotated[list[str] | None, typer.Option(
        help="sim, stac, planet or a full source string (repeatable); default: RAILWATCH_CATALOGS.")] = None,
    force: Annotated[bool, typer.Option(help="As a --force backfill would (done scenes again).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List what a backfill over the range would process, and what it would skip and why
    (registers nothing)."""
    import json

    from rich.table import Table

    from railwatch.adapters.catalogs import open_catalog
    from railwatch.search import plan_search, select_sources

    if fmt not in ("table", "json"):
        raise ConfigError(f"--format {fmt!r}: use table or json")
    first, last = parse_range(start, end)
    settings, area, db = aoi_and_db(aoi)
    catalogs = [open_catalog(s, settings.simulator_dir, settings.asset_maps)
                for s in select_sources(settings.catalogs, source or [])]
    planned = plan_search(area, catalogs, db, _midnight(first), _midnight(last + timedelta(days=1)),
                          settings.max_attempts, force)
    if fmt == "json":
        sys.stdout.write(json.dumps([{**p.__dict__, "acquired": p.acquired and p.acquired.isoformat()}
                                     for p in planned], indent=1) + "\n")
        return
    table = Table(title=f"{area.id}: {first} to {last}")
    for col in ("acquired", "source", "scene", "run would", "why"):
        table.add_column(col)
    for p in planned:
        when = f"{p.acquired:%Y-%m-%d %H:%M}" if p.acquired else "—"
        table.add_row(when, p.source, p.scene_id, "process" if p.process else "skip", p.reason)
    out.print(table)
    todo = sum(p.process for p in planned)
    out.print(f"{todo} scene(s) would be processed, {len(planned) - todo} skipped")
