"""The tracks, ballast, rail cars and their shadows, rendered at 1 m and averaged to the GSD.

Adjacent sidings are only 5.3 m apart (under 2 px at 3 m), so pixels over a yard mix ballast,
car roofs and shadows; rendering finely then area-averaging gives that mixing honestly.
Each track is processed in short pieces (`line_bands`) so no work is spent far from the rails.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from numpy.typing import NDArray

from railwatch.simulate.noise import hash01, lattice_field
from railwatch.simulate.raster import F32, F64, Band, block_mean, line_bands, ramp
from railwatch.simulate.scene import Yard
from railwatch.simulate.season import CAR_TYPES, DayPlan, Train
from railwatch.simulate.terrain import BALLAST, SHADE

BALLAST_HALF_WIDTH_M = 2.9
SLEEPER_HALF_WIDTH_M = 1.3
TYPE_CODES = {name: k for k, name in enumerate(CAR_TYPES)}
HALF_WIDTH = {"tank": 1.45, "boxcar": 1.6, "hopper": 1.55, "gondola": 1.55, "flatcar": 1.5}
PALETTE: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "tank": ((0.035, 0.037, 0.041, 0.05), (0.05, 0.052, 0.056, 0.066), (0.045, 0.04, 0.05, 0.06)),
    "boxcar": ((0.05, 0.055, 0.10, 0.14), (0.065, 0.055, 0.135, 0.17), (0.075, 0.07, 0.12, 0.16)),
    "hopper": ((0.30, 0.31, 0.32, 0.34), (0.24, 0.25, 0.26, 0.28), (0.36, 0.37, 0.37, 0.39)),
    "gondola": ((0.10, 0.114, 0.131, 0.165), (0.092, 0.104, 0.118, 0.15), (0.105, 0.11, 0.122, 0.152)),
    "flatcar": ((0.15, 0.12, 0.07, 0.18), (0.05, 0.10, 0.06, 0.15), (0.10, 0.14, 0.06, 0.20)),
}


class _Cars:
    """The cars of one track as sorted arrays, for vectorised look-ups by position."""

    def __init__(self, trains: list[Train], scale: float, key: int) -> None:
        rows = []
        for train in trains:
            for car, start in zip(train.cars, train.car_starts(), strict=True):
                rows.append((start * scale, (start + car.length_m) * scale, car))
        rows.sort(key=lambda r: r[0])
        self.n = len(rows)
        self.start = np.array([r[0] for r in rows], dtype=np.float32)
        self.end = np.array([r[1] for r in rows], dtype=np.float32)
        self.half = np.array([HALF_WIDTH[r[2].type] for r in rows], dtype=np.float32)
        self.height = np.array([CAR_TYPES[r[2].type].height_m for r in rows], dtype=np.float32)
        self.code = np.array([TYPE_CODES[r[2].type] for r in rows], dtype=np.int8)
        jitter = 0.92 + 0.16 * hash01(
            np.round(self.start * 10).astype(np.int64), np.zeros(self.n, np.int64), key
        )
        self.colour = np.array(
            [PALETTE[r[2].type][r[2].colour % len(PALETTE[r[2].type])] for r in rows], dtype=np.float32
        ).reshape(self.n, 4) * jitter[:, None].astype(np.float32)

    def lookup(self, s: F32, d: F32, pixel: float) -> tuple[NDArray[np.intp], F32]:
        """Index of the car at (s, d) (clamped) and how much of a `pixel`-metre pixel it covers."""
        k = np.clip(np.searchsorted(self.start, s, side="right") - 1, 0, self.n - 1)
        inv = np.float32(1.0 / pixel)
        along = ramp(np.minimum(s - self.start[k], self.end[k] - s) * inv)
        return k, along * ramp((self.half[k] - np.abs(d)) * inv)


def _pattern(cars: _Cars, k: NDArray[np.intp], s: F32, d: F32) -> F32:
    """Brightness of each roof point: tank crowns, roof walks, hopper bays, gondola walls."""
    rel = s - cars.start[k]
    length = cars.end[k] - cars.start[k]
    dn = d / cars.half[k]
    code = cars.code[k]
    tank = 0.7 + 0.55 * np.clip(1.0 - dn * dn, 0.0, 1.0)
    tank = np.where((rel < 0.8) | (length - rel < 0.8), tank * 0.8, tank)
    box = np.where(np.abs(d) < 0.35, 1.12, 1.0)
    hopper = 1.0 - 0.12 * np.abs(np.cos(np.pi * rel / np.maximum(length / 4.0, 1.0)))
    gondola = np.where(np.abs(d) < cars.half[k] - 0.3, 0.88, 1.08)
    flat = np.where(np.abs(rel - length / 2) < 0.4, 0.7, 1.0)
    choices = [tank, box, hopper, gondola, flat]
    out: F32 = np.select([code == c for c in range(len(choices))], choices, 1.0).astype(np.float32)
    return out


def render_yard(
    base: F32,
    xs: F64,
    ys: F64,
    yard: Yard,
    plan: DayPlan,
    shadow: tuple[float, float],
    key: int,
    factor: int = 3,
) -> F32:
    """Overlay ballast, cars and car shadows on `base` (4, h, w); returns the mixed (4, h, w).

    `xs`/`ys` are the world coordinates of the window's pixel centres; `shadow` is the ground
    offset of a shadow per metre of height (east, north).
    """
    step = float(xs[1] - xs[0])
    fine = step / factor
    fx = xs[0] - step / 2 + (np.arange(xs.size * factor) + 0.5) * fine
    fy = ys[0] + step / 2 - (np.arange(ys.size * factor) + 0.5) * fine
    hf, wf = fy.size, fx.size
    ballast = np.zeros((hf, wf), np.float32)
    sleeper = np.zeros((hf, wf), np.float32)
    shade = np.zeros((hf, wf), np.float32)
    car_a = np.zeros((hf, wf), np.float32)
    car_c = np.zeros((4, hf, wf), np.float32)
    by_track: dict[str, list[Train]] = defaultdict(list)
    for train in plan.trains:
        by_track[train.track_id].append(train)
    slen = float(np.hypot(*shadow))
    heights = np.arange(0.4, max(t.height_m for t in CAR_TYPES.values()) + 0.01, 0.6, dtype=np.float32)
    for track in yard.tracks:
        cars = _Cars(by_track.get(track.id, []), track.scale, key) if track.id in by_track else None
        reach = max(BALLAST_HALF_WIDTH_M, 1.6 + slen * 4.6) + 1.0
        for band in line_bands(track.xy, track.along, track.breaks, fx, fy, reach):
            ad = np.abs(band.d)
            win = ballast[band.rows, band.cols]
            np.maximum(win, ramp((np.float32(BALLAST_HALF_WIDTH_M) - ad) / np.float32(fine)), out=win)
            win = sleeper[band.rows, band.cols]
            np.maximum(win, ramp((np.float32(SLEEPER_HALF_WIDTH_M) - ad) / np.float32(fine)), out=win)
            if cars is not None and cars.n:
                _draw_cars(cars, band, fine, shadow, heights, shade, car_a, car_c)
    # slow variation of ballast tone (fresh vs old, oil-stained), fixed in the world
    tone = 1.0 + 0.05 * lattice_field(xs, ys, 30.0, key + 12)
    tone = np.repeat(np.repeat(tone, factor, 0), factor, 1)
    out = np.repeat(np.repeat(base, factor, axis=1), factor, axis=2)
    for b in range(4):
        band_b = out[b]
        band_b += ballast * (np.float32(BALLAST[b]) * tone - band_b)
        band_b *= 1.0 - 0.22 * sleeper
        band_b *= 1.0 - shade * np.float32(1.0 - SHADE[b])
        band_b += car_a * (car_c[b] - band_b)
    return block_mean(out, factor)


def _draw_cars(
    cars: _Cars,
    band: Band,
    fine: float,
    shadow: tuple[float, float],
    heights: F32,
    shade: F32,
    car_a: F32,
    car_c: F32,
) -> None:
    """Roofs and ground shadows of one track's cars within one band window."""
    s, d, rows, cols = band.s, band.d, band.rows, band.cols
    k, cover = cars.lookup(s, d, fine)
    if cover.any():
        roof = _pattern(cars, k, s, d)
        win_a = car_a[rows, cols]
        better = cover > win_a
        win_a[better] = cover[better]
        for b in range(4):
            win_c = car_c[b, rows, cols]
            win_c[better] = (cars.colour[k, b] * roof)[better]
    vs = np.float32(shadow[0] * band.ux + shadow[1] * band.uy)
    vd = np.float32(shadow[1] * band.ux - shadow[0] * band.uy)
    win_s = shade[rows, cols]
    for h in heights:
        ks, cov = cars.lookup(s - h * vs, d - h * vd, fine)
        cov = np.where(cars.height[ks] >= h, cov, 0.0).astype(np.float32)
        np.maximum(win_s, cov, out=win_s)


def shadow_vector(sun_azimuth: float, sun_elevation: float) -> tuple[float, float]:
    """Ground offset (east, north) of a shadow per metre of height: away from the sun."""
    az, el = math.radians(sun_azimuth), math.radians(max(sun_elevation, 5.0))
    k = 1.0 / math.tan(el)
    return (-math.sin(az) * k, -math.cos(az) * k)


def track_window(yard: Yard, xs: F64, ys: F64, margin: float) -> tuple[slice, slice] | None:
    """The rows/cols of a grid covering every track plus `margin` metres (None if outside)."""
    pts = np.vstack([t.xy for t in yard.tracks])
    step = float(xs[1] - xs[0])
    c0 = int(np.floor((pts[:, 0].min() - margin - xs[0]) / step))
    c1 = int(np.ceil((pts[:, 0].max() + margin - xs[0]) / step)) + 1
    r0 = int(np.floor((ys[0] - pts[:, 1].max() - margin) / step))
    r1 = int(np.ceil((ys[0] - pts[:, 1].min() + margin) / step)) + 1
    c0, c1, r0, r1 = max(c0, 0), min(c1, xs.size), max(r0, 0), min(r1, ys.size)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)
