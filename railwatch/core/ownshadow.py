"""A car's own shadow beside its track: where cars are resolved (≤ 1 m), a grey roof that
matches the ballast still shades the ground on its anti-sun side.

The strip sampled there (`TrackProfile.sides`, `side_strip_m` off the centreline) lies clear of
the car's own body and of the next siding's cars, so it darkens only under a shadow. A shadow
cast by the sun-side neighbour reaches this track's centreline first and darkens it too; a
shadow in the strip over an unchanged centreline has its caster on this track.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from railwatch.core.neighbours import shadow_direction_from_sun
from railwatch.core.occupancy import runs
from railwatch.core.types import DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]
Segment = tuple[float, float]


def own_shadow_trains(
    profiles: Mapping[str, TrackProfile],
    background: Mapping[str, TrackProfile],
    car_pitch_m: float,
    params: DetectorParams,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
) -> dict[str, list[Segment]]:
    """Per track, the stretches (metres along it) whose anti-sun strip is in a shadow their
    own centreline is not in, at least half a car long; none without the sun or the strips."""
    p = params
    if sun_azimuth_deg is None or sun_elevation_deg is None or sun_elevation_deg <= 0:
        return {}
    towards = shadow_direction_from_sun(sun_azimuth_deg)
    out: dict[str, list[Segment]] = {}
    for k, prof in profiles.items():
        bg = background.get(k)
        if bg is None or prof.sides.shape[0] != len(prof.valid) or bg.sides.shape != prof.sides.shape \
                or len(prof.valid) < 3 or prof.positions.shape[0] != len(prof.valid):
            continue
        across = _normals(prof.positions) @ towards
        # a shadow reaches past the body's edge only across the track, and only so far
        reach = p.car_min_height_m / np.tan(np.deg2rad(sun_elevation_deg)) * np.abs(across)
        side = np.where(across < 0, 0, 1)
        rows = np.arange(len(side))
        strip = _darkening(prof.sides[rows, side], bg.sides[rows, side])
        centre = _darkening(prof.values, bg.values)
        shaded = (
            (np.abs(across) >= p.own_shadow_min_across)
            & (reach >= p.side_strip_m - p.car_half_width_m + 0.5)
            & (strip >= p.own_shadow_min_dark)
            & (centre <= p.own_shadow_max_centre_dark)
        )
        step = prof.step_m
        found = [(a * step, b * step) for a, b in runs(shaded) if (b - a) * step >= 0.5 * car_pitch_m]
        if found:
            out[k] = found
    return out


def _darkening(values: npt.NDArray[np.float32], background: npt.NDArray[np.float32]) -> Floats:
    """The share of the background's brightness (mean over bands) lost; NaN (never over a
    threshold) where either is not known."""
    with np.errstate(invalid="ignore", divide="ignore"):
        now = np.mean(values.astype(np.float64), axis=1)
        before = np.mean(background.astype(np.float64), axis=1)
        lost: Floats = np.where(before > 0, 1.0 - now / before, np.nan)
    return lost


def _normals(positions: npt.NDArray[np.float64]) -> Floats:
    """Unit normals (col, row) of a track from its sample positions, as `sample_track` makes
    them (the tangent turned by +90° in pixel axes)."""
    tangent = np.gradient(positions, axis=0)
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-12)[:, None]
    return np.column_stack([-tangent[:, 1], tangent[:, 0]])
