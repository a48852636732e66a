"""What a person reads: the counts table and the cars-over-time plot of an AOI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from railwatch.adapters.counts import SceneCountRow
from railwatch.aoi import AOI


def flag_text(row: SceneCountRow) -> str:
    parts = []
    if row.surge:
        parts.append(f"SURGE {row.surge_ratio:.1f}× max" if row.surge_ratio else "SURGE")
    parts.extend(f for f in row.flags.split(",") if f)
    return ", ".join(parts)


def counts_table(aoi: AOI, rows: Sequence[SceneCountRow]) -> Table:
    table = Table(title=f"{aoi.label} ({aoi.id}): rail cars per scene", title_justify="left")
    for name, justify in [("date", "left"), ("scene", "left"), ("valid", "right"),
                          ("occupied m", "right"), ("cars", "right"), ("interval", "right"),
                          ("flag", "left")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        style = "bold red" if r.surge else ("dim" if r.valid_fraction < 0.6 else None)
        table.add_row(f"{r.acquired:%Y-%m-%d}", r.scene_id, f"{r.valid_fraction:.2f}",
                      f"{r.occupied_m:.0f}", str(r.cars), f"{r.cars_low}–{r.cars_high}",
                      flag_text(r), style=style)
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


def plot_counts(aoi: AOI, rows: Sequence[SceneCountRow], path: Path) -> Path:
    """A PNG of cars over time with intervals, low-coverage scenes hollow, surges marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def when(r: SceneCountRow) -> float:
        return float(mdates.date2num(r.acquired))  # type: ignore[no-untyped-call]

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=110)
    good = [r for r in rows if r.valid_fraction >= 0.6]
    poor = [r for r in rows if r.valid_fraction < 0.6]
    if good:
        ax.errorbar([when(r) for r in good], [r.cars for r in good],
                    yerr=[[r.cars - r.cars_low for r in good], [r.cars_high - r.cars for r in good]],
                    fmt="o", color="#1f4e79", capsize=2, lw=1, ms=5, label="cars (90% interval)")
    if poor:  # cloud-covered: the count covers only the clear part, so no interval is drawn
        ax.plot([when(r) for r in poor], [r.cars for r in poor], "o", color="#9a9a9a", mfc="white",
                ms=5, label="low coverage (cloud): partial count")
    history_max = aoi.prop("history_max_cars")
    if history_max is not None:
        ax.axhline(history_max, color="#c08000", ls="--", lw=1,
                   label=f"historical max ({history_max} cars)")
    surges = [r for r in rows if r.surge]
    for i, r in enumerate(surges):
        ax.axvline(when(r), color="#d62728", alpha=0.18, lw=6,
                   label="surge flagged" if i == 0 else None)
    if surges:
        peak = max(surges, key=lambda r: r.cars)
        ax.annotate(f"{peak.cars} cars, {peak.surge_ratio or 0:.1f}× max",
                    (when(peak), peak.cars), xytext=(-120, 8), textcoords="offset points",
                    color="#d62728", fontweight="bold",
                    arrowprops={"arrowstyle": "->", "color": "#d62728"})
    ax.set_title(f"{aoi.label}: rail cars per scene")
    ax.set_ylabel("rail cars")
    top = max([r.cars_high for r in good] + [r.cars for r in rows] + [history_max or 0, 1])
    ax.set_ylim(0, top * 1.15)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
