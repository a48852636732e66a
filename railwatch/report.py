"""What a person reads: the counts table and the cars-over-time plot of an AOI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from railwatch.adapters.alerts import AlertRow
from railwatch.adapters.counts import SceneCountRow, TrackCountRow
from railwatch.alerts import surge_params
from railwatch.aoi import AOI
from railwatch.core.surge import SurgeFlag


def lay_out(fig: Any) -> None:
    """A tight layout, applied once: left in place as the figure's layout engine, it makes
    savefig draw the whole figure twice (≈ 20 % of a quicklook's time; same picture)."""
    fig.tight_layout()
    fig.set_layout_engine(None)


def flag_text(row: SceneCountRow, tracks: Sequence[TrackCountRow] = ()) -> str:
    """The scene's surge and quality flags, then the tracks that surged against their own history."""
    parts = []
    if row.surge:
        parts.append(f"SURGE {row.surge_ratio:.1f}× max" if row.surge_ratio else "SURGE")
    parts.extend(f for f in row.flags.split(",") if f)
    parts.extend(f"track {t.track_id} surge" + (f" {t.surge_ratio:.1f}×" if t.surge_ratio else "")
                 for t in tracks if t.surge and t.scene_id == row.scene_id)
    return ", ".join(parts)


def counts_table(aoi: AOI, rows: Sequence[SceneCountRow], tracks: Sequence[TrackCountRow] = ()) -> Table:
    """One line per scene; `tracks` (the AOI's track rows) add each scene's per-track surges."""
    by_scene: dict[str, list[TrackCountRow]] = {}
    for t in tracks:
        by_scene.setdefault(t.scene_id, []).append(t)
    table = Table(title=f"{aoi.label} ({aoi.id}): rail cars per scene", title_justify="left")
    for name, justify in [("date", "left"), ("scene", "left"), ("valid", "right"),
                          ("occupied m", "right"), ("cars", "right"), ("interval", "right"),
                          ("flag", "left")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        style = "bold red" if r.surge else ("dim" if r.valid_fraction < 0.6 else None)
        table.add_row(f"{r.acquired:%Y-%m-%d}", r.scene_id, f"{r.valid_fraction:.2f}",
                      f"{r.occupied_m:.0f}", str(r.cars), f"{r.cars_low}–{r.cars_high}",
                      flag_text(r, by_scene.get(r.scene_id, ())), style=style)
    return table


def headline(aoi: AOI, rows: Sequence[SceneCountRow]) -> str | None:
    """One sentence about the largest flagged scene, as an analyst would say it."""
    flagged = [r for r in rows if r.surge]
    if not flagged:
        return None
    peak = max(flagged, key=lambda r: r.cars)
    ratio = f", {peak.surge_ratio:.1f}× the historical maximum" if peak.surge_ratio else ""
    return (f"{aoi.label}: {peak.cars} cars on {peak.acquired:%Y-%m-%d}{ratio} "
            f"({len(flagged)} scene(s) flagged from {flagged[0].acquired:%Y-%m-%d})")


def plot_counts(aoi: AOI, rows: Sequence[SceneCountRow], path: Path,
                flags: Sequence[SurgeFlag] | None = None, alerts: Sequence[AlertRow] = ()) -> Path:
    """A PNG of cars over time: intervals, low-coverage scenes hollow, the baseline and its
    normal range (from `flags`), the historical maximum, surges and alert episodes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def when(t: datetime) -> float:
        return float(mdates.date2num(t))  # type: ignore[no-untyped-call]

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(11, 5.2), dpi=110)
    if flags is not None:
        _baseline_band(ax, [when(r.acquired) for r in rows], flags, surge_params(aoi).z_threshold)
    for i, a in enumerate(a for a in alerts if a.status != "withdrawn"):
        end = a.closed_at or rows[-1].acquired
        ax.axvspan(when(a.opened_at) - 0.5, when(end) + 0.5, color="#d62728", alpha=0.08, lw=0,
                   label="alert episode (open → closed)" if i == 0 else None)
        ax.axvline(when(a.opened_at), color="#d62728", lw=1, ls=":")
    good = [r for r in rows if r.valid_fraction >= 0.6]
    poor = [r for r in rows if r.valid_fraction < 0.6]
    if good:
        ax.errorbar([when(r.acquired) for r in good], [r.cars for r in good],
                    yerr=[[r.cars - r.cars_low for r in good], [r.cars_high - r.cars for r in good]],
                    fmt="o", color="#1f4e79", capsize=2, lw=1, ms=5, label="cars (90% interval)")
    if poor:  # cloud-covered: the count covers only the clear part, so no interval is drawn
        ax.plot([when(r.acquired) for r in poor], [r.cars for r in poor], "o", color="#9a9a9a",
                mfc="white", ms=5, label="low coverage (cloud): partial count")
    history_max = aoi.prop("history_max_cars")
    if history_max is not None:
        ax.axhline(history_max, color="#c08000", ls="--", lw=1,
                   label=f"historical max ({history_max} cars)")
    surges = [r for r in rows if r.surge]
    if surges:
        ax.plot([when(r.acquired) for r in surges], [r.cars for r in surges], "o", color="#d62728",
                ms=7, label="surge flagged")
        peak = max(surges, key=lambda r: r.cars)
        ax.annotate(f"{peak.cars} cars, {peak.surge_ratio or 0:.1f}× max",
                    (when(peak.acquired), peak.cars), xytext=(-130, 6), textcoords="offset points",
                    color="#d62728", fontweight="bold",
                    arrowprops={"arrowstyle": "->", "color": "#d62728"})
    ax.set_title(f"{aoi.label}: rail cars per scene")
    ax.set_ylabel("rail cars")
    top = max([r.cars_high for r in good] + [r.cars for r in rows] + [history_max or 0, 1])
    ax.set_ylim(0, top * 1.18)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    lay_out(fig)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def _baseline_band(ax: Any, times: Sequence[float], flags: Sequence[SurgeFlag], z: float) -> None:
    """The trailing median and the range the surge test treats as normal (median ± z·spread)."""
    known = [(t, f.baseline, f.spread or 0.0) for t, f in zip(times, flags, strict=True)
             if f.baseline is not None]
    if not known:
        return
    t, base, spread = (list(v) for v in zip(*known, strict=True))
    low = [max(b - z * s, 0.0) for b, s in zip(base, spread, strict=True)]
    high = [b + z * s for b, s in zip(base, spread, strict=True)]
    ax.fill_between(t, low, high, step="mid", color="#2ca02c", alpha=0.15, lw=0,
                    label=f"normal range (baseline ± {z:g} robust σ)")
    ax.step(t, base, where="mid", color="#2ca02c", lw=1.2, label="baseline (trailing median)")
