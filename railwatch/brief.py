"""Files an analyst takes away: a CSV/Parquet export of the counts, and the report PNGs (the
time series, and before/after quicklooks of the surge's peak scene)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from railwatch.adapters.alerts import AlertRow, AlertStore
from railwatch.adapters.counts import CountsStore, SceneCountRow
from railwatch.adapters.store import ObjectStore
from railwatch.alerts import scene_points, series_flags, surge_params
from railwatch.aoi import AOI
from railwatch.core.surge import SurgeParams
from railwatch.errors import InvalidInput
from railwatch.quicklook import clip_grid, render_quicklook
from railwatch.report import plot_counts

FORMATS = ("csv", "parquet")
COLUMNS = ("aoi_id", "source", "scene_id", "detector_version", "acquired", "cars", "cars_low",
           "cars_high", "occupied_m", "valid_fraction", "flags", "surge", "surge_ratio",
           "baseline_cars", "background_scenes", "image_key", "mask_key")


def export_counts(rows: Sequence[SceneCountRow], path: Path, fmt: str) -> Path:
    """Write the scene counts of an AOI as CSV or Parquet (one row per scene, oldest first)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    records: list[dict[str, Any]] = [{c: getattr(r, c) for c in COLUMNS} for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
        return path
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({**r, "acquired": r["acquired"].isoformat()} for r in records)
    return path


@dataclass(frozen=True)
class Report:
    """The report's files; quicklooks only when an alert falls in the window."""

    plot: Path
    alert: AlertRow | None = None
    before: Path | None = None
    after: Path | None = None


def parse_since(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise InvalidInput(f"--since must be a date like 2023-09-01, not {text!r}") from None


def recount_hint(aoi: AOI, db: CountsStore, detector_version: str) -> str | None:
    """After a detector upgrade: which earlier version counted more of the AOI's scenes than this
    one, and the forced backfill that recounts them (a plain backfill skips scenes already done);
    None when this version has counted at least as many as any other."""
    versions = db.detector_versions(aoi.id)
    mine = sum(n for v, n, _, _ in versions if v == detector_version)
    other = [(v, n, a, b) for v, n, a, b in versions if v != detector_version and n > mine]
    if not other:
        return None
    version, n, first, last = other[0]
    return (f"AOI {aoi.id!r} has {mine} scene(s) counted by detector {detector_version} (this "
            f"railwatch) and {n} by detector {version}, acquired {first:%Y-%m-%d} to {last:%Y-%m-%d}: "
            f"recount them with `railwatch backfill --aoi {aoi.id} --start {first:%Y-%m-%d} "
            f"--end {last:%Y-%m-%d} --force`")


def current_counts(aoi: AOI, db: CountsStore, detector_version: str) -> list[SceneCountRow]:
    """The AOI's scene counts by this detector version; none is an error that says what to run:
    a backfill, or, after a detector upgrade, a forced one (`recount_hint`)."""
    rows = db.scene_counts(aoi.id, detector_version)
    if rows:
        return rows
    hint = recount_hint(aoi, db, detector_version)
    raise InvalidInput(hint or f"no counts stored for AOI {aoi.id!r}: run `railwatch backfill` first")


def write_report(aoi: AOI, db: CountsStore, store: ObjectStore, detector_version: str,
                 since: date | None, out_dir: Path, clip_buffer_m: float) -> Report:
    """The time-series PNG from `since`, and before/after quicklooks of the newest alert's peak."""
    rows = current_counts(aoi, db, detector_version)
    flags = series_flags(aoi, rows)  # over the whole series: the baseline needs the history
    keep = [i for i, r in enumerate(rows) if since is None or r.acquired.date() >= since]
    if not keep:
        raise InvalidInput(f"no counts for AOI {aoi.id!r} since {since}; the last is from "
                           f"{rows[-1].acquired:%Y-%m-%d}")
    alerts = [a for a in AlertStore(db).alerts(aoi.id, detector_version) if a.status != "withdrawn"
              and (since is None or (a.closed_at or rows[-1].acquired).date() >= since)]
    tag = f"-since-{since}" if since else ""
    plot = plot_counts(aoi, [rows[i] for i in keep], out_dir / f"{aoi.id}-cars{tag}.png",
                       [flags[i] for i in keep], alerts)
    if not alerts:
        return Report(plot)
    alert = alerts[-1]
    by_id = {r.scene_id: r for r in rows}
    after = by_id[alert.peak_scene_id]
    before = quiet_before(rows, alert.opened_at, surge_params(aoi))
    grid = clip_grid(aoi, clip_buffer_m)
    paths: list[Path | None] = []
    for label, row in (("before", before), ("after", after)):
        if row is None or store.info(row.image_key) is None:
            paths.append(None)
            continue
        caption = (f"{aoi.label} — {label}: {row.acquired:%Y-%m-%d} — {row.cars} cars "
                   f"[{row.cars_low}–{row.cars_high}]" + (f", {row.surge_ratio:.1f}× the historical "
                                                          "maximum" if label == "after" and
                                                          row.surge_ratio else ""))
        tracks = db.track_counts(aoi.id, row.scene_id, row.detector_version)
        png = render_quicklook(aoi, grid, row, tracks, store, caption)
        path = out_dir / f"{aoi.id}-{label}-{row.acquired:%Y-%m-%d}.png"
        path.write_bytes(png)
        paths.append(path)
    return Report(plot, alert, paths[0], paths[1])


def quiet_before(rows: Sequence[SceneCountRow], opened_at: datetime,
                 params: SurgeParams) -> SceneCountRow | None:
    """The last clear, reliable scene before an alert opened that was neither flagged nor
    above the historical maximum by the surge ratio (an onset the z test missed): the yard as
    usual."""
    points = scene_points(rows, params)
    earlier = [r for r, p in zip(rows, points, strict=True)
               if r.acquired < opened_at and p.reliable and not p.surge and r.valid_fraction >= 0.9
               and (r.surge_ratio is None or r.surge_ratio < params.ratio_threshold)]
    return earlier[-1] if earlier else None
