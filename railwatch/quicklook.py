"""Quicklook PNGs of a clip: natural colour, the tracks, and the stretches found occupied.

This is the evidence an analyst puts in a brief next to the count: the yard as the satellite
saw it, with every occupied segment the detector measured drawn on its track, clouds greyed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from railwatch.adapters.counts import SceneCountRow, TrackCountRow
from railwatch.adapters.store import ObjectStore
from railwatch.aoi import AOI
from railwatch.core.profiles import sample_track
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.measure import load_clip, track_lines
from railwatch.report import lay_out

OCCUPIED = "#ff2d2d"
TRACK = "#f2f2f2"
MARGIN_PX = 25
LABEL_GAP_PT, LABEL_WIDTH_PT = 9.0, 30.0  # track labels: 7 pt text in a box
STRETCH_SAMPLES = 50_000
PNG_COMPRESS_LEVEL = 1  # zlib's default 6 took a third of a quicklook's time for 8% fewer bytes;
# 3 → 1: 136 → 122 ms a 3 m quicklook, for 3 % more bytes


def clip_grid(aoi: AOI, clip_buffer_m: float) -> AOIGrid:
    """The grid every clip of the AOI is on (as the flows build it)."""
    return aoi_grid(aoi, gsd_m=float(aoi.prop("gsd_m", 3.0)), buffer_m=clip_buffer_m)


def natural_colour(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W, 3) floats 0..1 from b,g,r[,nir] bands, stretched on the clear pixels."""
    rgb = np.moveaxis(image[[2, 1, 0]], 0, -1).astype(np.float32)  # a display needs no more
    clear = rgb[valid] if valid.any() else rgb.reshape(-1, 3)
    # the stretch from at most STRETCH_SAMPLES of them, evenly spread: as good for a picture,
    # a sort of a few instead of half a million (a 3 m clip's percentiles: 8.8 -> 1.7 ms)
    clear = clear[:: max(1, len(clear) // STRETCH_SAMPLES)]
    low, high = np.percentile(clear, (2, 98), axis=0).astype(np.float32)
    out: np.ndarray = np.clip((rgb - low) / np.maximum(high - low, 1e-6), 0, 1) ** np.float32(0.8)
    out[~valid] = 0.5 * out[~valid] + 0.5 * 0.85  # clouds and no-data: washed out
    return out


def track_pixels(aoi: AOI, grid: AOIGrid, row: SceneCountRow
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per track: sample positions (S, 2) col/row in the clip, and metres along the track."""
    shift = np.array([row.shift_dx_m, row.shift_dy_m]) / grid.gsd_m  # applied to the image
    out = {}
    for line in track_lines(aoi, grid):
        pos, _, step = sample_track(line, grid.gsd_m, 1.0)
        out[line.id] = (pos - shift, (np.arange(len(pos)) + 0.5) * step)
    return out


def label_lifts(starts: Mapping[str, np.ndarray], pt_per_px: float, gap_pt: float = LABEL_GAP_PT
                ) -> dict[str, float]:
    """Vertical shifts (points, up) of labels drawn left of each (col, row) start so that no two
    whose starts are within a label's width across sit closer than `gap_pt` (top one stays)."""
    up = {k: -float(xy[1]) * pt_per_px for k, xy in starts.items()}  # rows grow downwards
    placed: list[tuple[float, float]] = []  # (x, y) in points
    lifts = {}
    for k in sorted(starts, key=lambda k: -up[k]):
        x, y = float(starts[k][0]) * pt_per_px, up[k]
        for px, py in placed:
            if abs(x - px) < LABEL_WIDTH_PT:
                y = min(y, py - gap_pt)
        placed.append((x, y))
        lifts[k] = y - up[k]
    return lifts


def render_quicklook(aoi: AOI, grid: AOIGrid, row: SceneCountRow, tracks: Sequence[TrackCountRow],
                     store: ObjectStore, caption: str | None = None) -> bytes:
    """A PNG of one scene's clip with the occupied segments drawn on the tracks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    image, valid = load_clip(store, row.image_key, row.mask_key)
    rgb = natural_colour(image, valid)
    paths = track_pixels(aoi, grid, row)
    every = np.concatenate([p for p, _ in paths.values()])
    c0, r0 = np.maximum(np.floor(every.min(axis=0)) - MARGIN_PX, 0).astype(int)
    c1, r1 = np.minimum(np.ceil(every.max(axis=0)) + MARGIN_PX, rgb.shape[1::-1]).astype(int)
    width = 9.0
    fig, ax = plt.subplots(figsize=(width, width * (r1 - r0) / max(c1 - c0, 1) + 0.9), dpi=120)
    # 8-bit colour, as the PNG holds it: matplotlib then skips its float image pipeline
    ax.imshow(np.rint(rgb[r0:r1, c0:c1] * 255).astype(np.uint8), extent=(c0, c1, r1, r0),
              interpolation="nearest")
    segments = {t.track_id: t.segments or [] for t in tracks}
    for track_id, (pos, along) in paths.items():
        ax.plot(pos[:, 0], pos[:, 1], color=TRACK, lw=0.8, alpha=0.7)
        for start, end in segments.get(track_id, []):
            on = (along >= start) & (along <= end)
            ax.plot(pos[on, 0], pos[on, 1], color=OCCUPIED, lw=3.2, solid_capstyle="butt")
    # sidings a few metres apart start a pixel or two apart: their labels are spread apart
    # and tied to their tracks' starts
    pt_per_px = width * 72.0 * 0.95 / max(c1 - c0, 1)
    lifts = label_lifts({k: pos[0] for k, (pos, _) in paths.items()}, pt_per_px)
    for track_id, (pos, _) in paths.items():
        lift = lifts[track_id]
        ax.annotate(track_id, pos[0], xytext=(-6, lift), textcoords="offset points", ha="right",
                    va="center", fontsize=7, color="white",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "black", "alpha": 0.55, "lw": 0},
                    arrowprops={"arrowstyle": "-", "color": "white", "lw": 0.6, "alpha": 0.8}
                    if lift else None)
    _scale_bar(ax, grid.gsd_m, c0, r1)
    cars = f"{row.cars} cars [{row.cars_low}–{row.cars_high}]"
    ax.set_title(caption or f"{aoi.label} — {row.acquired:%Y-%m-%d %H:%M} UTC — {cars}, "
                 f"{row.valid_fraction:.0%} clear", fontsize=10)
    ax.legend(handles=[Line2D([], [], color=OCCUPIED, lw=3.2, label="occupied (detected)"),
                       Line2D([], [], color=TRACK, lw=1, label="track centreline")],
              loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    lay_out(fig)
    return _png(fig, plt)


def _scale_bar(ax: Any, gsd_m: float, left: int, bottom: int) -> None:
    length_px = 200.0 / gsd_m
    x, y = left + 8, bottom - 8
    ax.plot([x, x + length_px], [y, y], color="white", lw=3)
    ax.text(x + length_px / 2, y - 3, "200 m", color="white", ha="center", va="bottom", fontsize=8)


def _png(fig: Any, plt: Any) -> bytes:
    """The figure as PNG bytes (no timestamp: the same picture gives the same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None},
                pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    plt.close(fig)
    return buffer.getvalue()
