"""The level correction: what image and background differ by where nothing changed, taken off
before scoring. Residual haze is additive, bluish and varies over kilometres: along a 1.2 km
yard it is a slope, which a constant offset leaves as a false change at both ends (the
straight-line correction is opt-in: `DetectorParams.level_trend`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from railwatch.core import DetectorParams, TrackProfile
from railwatch.core.occupancy import score_tracks

BALLAST = np.array([1180.0, 1280.0, 1400.0, 1700.0])
HAZE_SHAPE = np.array([1.0, 0.62, 0.38, 0.18])  # additive path radiance per band (blue most)
LENGTH = 1200  # samples of 1 m
GSD_M = 3.0
SPACING_M = 5.3


def yard(haze_slope: float, seed: int) -> dict[str, TrackProfile]:
    """Four parallel sidings at 1 m steps with positions (pixels); `haze_slope`: the blue
    band's added haze per 1,000 m, as a fraction of the ballast, zero at the yard's middle."""
    rng = np.random.default_rng(seed)
    s = np.arange(LENGTH, dtype=np.float64)
    haze = (haze_slope * (s - LENGTH / 2) / 1000.0)[:, None] * HAZE_SHAPE[None, :] * BALLAST[0]
    out = {}
    for i in range(4):
        values = BALLAST[None, :] + haze
        values = values * (1.0 + 0.008 * rng.normal(size=values.shape))
        positions = np.column_stack([s / GSD_M + 20.0, np.full(LENGTH, 40.0 + i * SPACING_M / GSD_M)])
        out[f"t{i + 1}"] = TrackProfile(f"t{i + 1}", 1.0, values.astype(np.float32),
                                        np.ones(LENGTH, dtype=bool), positions)
    return out


def test_haze_sloping_along_the_yard_is_no_change() -> None:
    """With `level_trend` (opt-in, see DetectorParams): 6 % more blue haze per kilometre (the
    simulator's haze veil over a yard this long) and no sample of an empty yard stands out; the
    default constant offset leaves the ends changed (so the test can tell the two apart)."""
    background, image = yard(0.0, 1), yard(0.06, 2)
    p = replace(DetectorParams(), level_trend=True)
    scores, _ = score_tracks(image, background, p)
    assert max(float(s.z.max()) for s in scores.values()) < p.low_z + 1.0
    flat, _ = score_tracks(image, background, DetectorParams())
    assert max(float(s.z.max()) for s in flat.values()) >= p.high_z


def test_without_positions_the_offset_is_constant() -> None:
    """Profiles stored without positions, `level_trend` on: the constant offset (a uniform haze
    is still taken off)."""
    background = {k: replace(v, positions=np.zeros((0, 2))) for k, v in yard(0.0, 3).items()}
    image = {k: replace(v, values=(v.values + 0.03 * BALLAST[0] * HAZE_SHAPE).astype(np.float32),
                        positions=np.zeros((0, 2))) for k, v in yard(0.0, 4).items()}
    scores, _ = score_tracks(image, background, DetectorParams(level_trend=True))
    assert max(float(s.z.max()) for s in scores.values()) < DetectorParams().low_z + 1.0
