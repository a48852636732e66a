"""Small synthetic rail-yard scenes for the detection core's tests (numpy/scipy only).

A textured landscape (fields, soil, roofs with shadows, roads) and a ballast bed with parallel
tracks 5.3 m apart at an angle, rendered at 1 m, blurred by a sensor PSF and area-averaged to
3 m. Cars are anti-aliased rectangles (13.5 m long, 3.1 m wide, 14.5 m pitch) that cast a
shadow (5 m, low sun) across the neighbouring track. Values are reflectance x 10000 (blue, green, red, nir).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core import TrackLine

F = npt.NDArray[np.float64]

FINE_M = 1.0
GSD_M = 3.0
FACTOR = 3
PITCH_M = 14.5
CAR_GAP_M = 1.0
CAR_WIDTH_M = 3.1
SPACING_M = 5.3

COLOURS: dict[str, tuple[float, float, float, float]] = {
    "dark": (350.0, 380.0, 400.0, 450.0),
    "bright": (2800.0, 2900.0, 3000.0, 3100.0),
    "rust": (500.0, 600.0, 1000.0, 1500.0),
    "blue": (1300.0, 1000.0, 800.0, 900.0),
    "grey": (1000.0, 1050.0, 1150.0, 1350.0),  # close to ballast
}
SHADE = np.array([0.45, 0.38, 0.33, 0.30])  # fraction of light left in a shadow (skylight is blue)
BALLAST = np.array([1100.0, 1200.0, 1300.0, 1700.0])
LANDCOVER = np.array(
    [
        [400.0, 700.0, 500.0, 3000.0],  # vegetation
        [900.0, 1200.0, 1600.0, 2200.0],  # soil
        [1600.0, 1700.0, 1800.0, 2000.0],  # concrete
        [700.0, 900.0, 800.0, 2400.0],  # grass
    ]
)


@dataclass(frozen=True)
class Train:
    """`n` cars on track `track` starting `start_m` from the track's first vertex."""

    track: int
    start_m: float
    n: int
    colour: str | tuple[str, ...] = "dark"

    @property
    def length_m(self) -> float:
        return self.n * PITCH_M - CAR_GAP_M

    def colours(self) -> list[str]:
        if isinstance(self.colour, str):
            return [self.colour] * self.n
        return [self.colour[i % len(self.colour)] for i in range(self.n)]


@dataclass
class Yard:
    """Geometry and the static (car-free) landscape of a synthetic yard."""

    width_px: int = 170
    height_px: int = 130
    n_tracks: int = 5
    track_len_m: float = 400.0
    angle_deg: float = 27.0
    seed: int = 1
    origin_m: tuple[float, float] = (60.0, 300.0)  # first vertex of track 0 (x, y down), metres
    background: F = field(init=False, repr=False)

    def __post_init__(self) -> None:
        a = np.deg2rad(self.angle_deg)
        self.u = np.array([np.cos(a), -np.sin(a)])  # along track (x right, y down)
        self.n = np.array([np.sin(a), np.cos(a)])  # across, towards higher track index is -n
        self.background = self._landscape()

    # geometry -------------------------------------------------------------------------------
    def track_origin(self, k: int) -> F:
        return np.asarray(self.origin_m, dtype=float) - k * SPACING_M * self.n

    def tracks(self) -> list[TrackLine]:
        """Centrelines in 3 m pixel coordinates (corner convention)."""
        out = []
        for k in range(self.n_tracks):
            p0 = self.track_origin(k)
            p1 = p0 + self.track_len_m * self.u
            out.append(TrackLine(f"t{k + 1}", (np.array([p0, p1]) / GSD_M,)))
        return out

    def _coords(self, shift_m: tuple[float, float] = (0.0, 0.0)) -> tuple[F, F]:
        h, w = self.height_px * FACTOR, self.width_px * FACTOR
        y, x = np.mgrid[0:h, 0:w].astype(float)
        return x + 0.5 - shift_m[0], y + 0.5 - shift_m[1]

    def _along_across(self, k: int, x: F, y: F) -> tuple[F, F]:
        o = self.track_origin(k)
        dx, dy = x - o[0], y - o[1]
        return dx * self.u[0] + dy * self.u[1], dx * self.n[0] + dy * self.n[1]

    # landscape ------------------------------------------------------------------------------
    def _landscape(self) -> F:
        rng = np.random.default_rng(self.seed)
        h, w = self.height_px * FACTOR, self.width_px * FACTOR
        fields = ndimage.gaussian_filter(rng.normal(size=(h, w)), 25)
        classes = np.digitize(fields, np.quantile(fields, [0.3, 0.55, 0.8]))
        img = LANDCOVER[classes].transpose(2, 0, 1).copy()
        img *= 1.0 + 0.08 * ndimage.gaussian_filter(rng.normal(size=(h, w)), 3)[None] / 0.1
        img *= 1.0 + 0.03 * rng.normal(size=(1, h, w))
        # roofs with shadows
        for _ in range(60):
            r0, c0 = rng.integers(0, h - 30), rng.integers(0, w - 30)
            hh, ww = rng.integers(8, 25, size=2)
            roof = rng.choice([0.6, 1.3, 1.8])
            img[:, r0 + 3 : r0 + hh + 3, c0 + 3 : c0 + ww + 3] *= 0.45
            img[:, r0 : r0 + hh, c0 : c0 + ww] = roof * 1400.0 * np.array([1, 1.05, 1.1, 1.2])[
                :, None, None
            ]
        # roads
        for _ in range(6):
            x, y = self._coords()
            ang = rng.uniform(0, np.pi)
            d = np.abs((x - rng.uniform(0, w)) * np.sin(ang) - (y - rng.uniform(0, h)) * np.cos(ang))
            road = np.clip(4.0 - d, 0.0, 1.0)
            img = img * (1 - road) + road * np.array([1700.0, 1750.0, 1800.0, 1900.0])[:, None, None]
        # ballast bed and the darker track beds
        x, y = self._coords()
        mid = (self.n_tracks - 1) / 2.0
        a, c = self._along_across(0, x, y)
        c = c + mid * SPACING_M  # across distance from the yard's middle line
        half = (self.n_tracks - 1) * SPACING_M / 2.0 + 6.0
        bed = np.clip(half - np.abs(c) + 0.5, 0, 1) * np.clip(
            np.minimum(a + 20.0, self.track_len_m + 20.0 - a) + 0.5, 0, 1
        )
        tex = 1.0 + 0.03 * rng.normal(size=(h, w))
        img = img * (1 - bed) + bed * BALLAST[:, None, None] * tex
        for k in range(self.n_tracks):
            a, c = self._along_across(k, x, y)
            sleeper = np.clip(1.25 - np.abs(c) + 0.5, 0, 1) * np.clip(
                np.minimum(a, self.track_len_m - a) + 0.5, 0, 1
            )
            img *= 1.0 - 0.15 * sleeper
        return np.asarray(img, dtype=np.float64)

    # scenes ---------------------------------------------------------------------------------
    def render(
        self,
        trains: list[Train] | tuple[Train, ...] = (),
        shift_px: tuple[float, float] = (0.0, 0.0),
        gain: float | tuple[float, ...] = 1.0,
        offset: float | tuple[float, ...] = 0.0,
        noise: float = 25.0,
        seed: int = 0,
        cloud: tuple[float, float, float] | None = None,
        bands: int = 4,
        psf_m: float = 1.3,
        shadow_m: float = 5.0,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """One 3 m image and its valid mask. Content is displaced by `shift_px` (dx, dy) pixels
        relative to the yard's true geometry; `cloud` = (x_m, y_m, radius_m) of an opaque cloud,
        masked where it is more than 5 % opaque."""
        rng = np.random.default_rng(seed)
        shift_m = (shift_px[0] * GSD_M, shift_px[1] * GSD_M)
        img = np.stack(
            [ndimage.shift(b, (shift_m[1], shift_m[0]), order=3, mode="nearest") for b in self.background]
        )
        x, y = self._coords(shift_m)
        cars = []
        for train in trains:
            a, c = self._along_across(train.track, x, y)
            for i, name in enumerate(train.colours()):
                s = train.start_m + i * PITCH_M
                e = s + PITCH_M - CAR_GAP_M
                along = np.clip(np.minimum(a - s, e - a) + 0.5, 0, 1)
                cars.append((along, c, name))
        # shadows on the ground first (swept from the car towards the next track), then roofs,
        # which stand above any neighbour's shadow
        if shadow_m > 0:
            shade = np.zeros(x.shape)
            half = CAR_WIDTH_M / 2 + shadow_m / 2
            for along, c, _ in cars:
                strip = along * np.clip(half - np.abs(c + shadow_m / 2) + 0.5, 0, 1)
                np.maximum(shade, strip, out=shade)
            img = img * (1.0 - shade[None] * (1.0 - SHADE[:, None, None]))
        for along, c, name in cars:
            car = along * np.clip(CAR_WIDTH_M / 2 - np.abs(c) + 0.5, 0, 1)
            img = img * (1 - car) + car * np.asarray(COLOURS[name])[:, None, None]
        if cloud is not None:
            cx, cy, rad = cloud
            d = np.hypot(x - cx, y - cy)
            opacity = np.clip((rad - d) / 15.0, 0, 1)
            img = img * (1 - opacity) + opacity * 6000.0
        if psf_m > 0:
            img = ndimage.gaussian_filter(img, (0, psf_m, psf_m))
        img = img.reshape(4, self.height_px, FACTOR, self.width_px, FACTOR).mean(axis=(2, 4))
        g = np.broadcast_to(np.asarray(gain, dtype=float), (4,))[:, None, None]
        o = np.broadcast_to(np.asarray(offset, dtype=float), (4,))[:, None, None]
        img = img * g + o + rng.normal(scale=noise, size=img.shape)
        valid = np.ones((self.height_px, self.width_px), dtype=bool)
        if cloud is not None:
            cx, cy, rad = cloud
            yy, xx = np.mgrid[0 : self.height_px, 0 : self.width_px]
            d = np.hypot((xx + 0.5) * GSD_M - cx - shift_m[0], (yy + 0.5) * GSD_M - cy - shift_m[1])
            valid &= d > rad + 3.0
        return img[:bands].astype(np.float32), valid

    def point(self, k: int, along_m: float) -> tuple[float, float]:
        """(x, y) metres of a point on track k."""
        p = self.track_origin(k) + along_m * self.u
        return float(p[0]), float(p[1])


def truth(trains: list[Train] | tuple[Train, ...], n_tracks: int) -> dict[str, dict[str, Any]]:
    """Per-track true occupied length, car count and (start, end) segments."""
    out: dict[str, dict[str, Any]] = {
        f"t{k + 1}": {"occupied_m": 0.0, "cars": 0, "segments": []} for k in range(n_tracks)
    }
    for t in trains:
        rec = out[f"t{t.track + 1}"]
        rec["occupied_m"] += t.length_m
        rec["cars"] += t.n
        rec["segments"].append((t.start_m, t.start_m + t.length_m))
    return out
