"""A car's own shadow beside its track: where cars are resolved (≤ 1 m), a grey roof that
matches the ballast still shades the ground on its anti-sun side.

The strip sampled there (`TrackProfile.sides`, `side_strip_m` off the centreline) lies clear of
the car's own body and of the next siding's cars, so it darkens only under a shadow. A shadow
cast by the sun-side neighbour reaches this track's centreline first and darkens it too; a
shadow in the strip over an unchanged centreline has its caster on this track. And where the
strip stays lit though even a flat car's shadow would reach it, no car stands on the track,
whatever its centreline shows (a neighbour's shadow across it, which stops short of the strip).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from railwatch.core.neighbours import shadow_direction_from_sun
from railwatch.core.occupancy import runs
from railwatch.core.shadowgeom import shadow_length_per_m, track_direction
from railwatch.core.types import DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]
Segment = tuple[float, float]


@dataclass(frozen=True)
class OwnShadows:
    """Per track, stretches (metres along it, at least half a car long): `cars`, whose
    anti-sun strip is in a shadow their centreline is not in; `none`, whose anti-sun strip is
    lit where even a low car's shadow would fall."""

    cars: dict[str, list[Segment]]
    none: dict[str, list[Segment]]


def own_shadows(
    profiles: Mapping[str, TrackProfile],
    background: Mapping[str, TrackProfile],
    car_pitch_m: float,
    params: DetectorParams,
    sun_azimuth_deg: float | None,
    sun_elevation_deg: float | None,
) -> OwnShadows:
    """What the strips beside the tracks say; nothing without the sun or the strips."""
    p = params
    out = OwnShadows({}, {})
    if sun_azimuth_deg is None or sun_elevation_deg is None or sun_elevation_deg <= 0:
        return out
    towards = shadow_direction_from_sun(sun_azimuth_deg)
    usable = {k: prof for k, prof in profiles.items() if k in background
              and prof.sides.shape[0] == len(prof.valid) == prof.positions.shape[0]
              and background[k].sides.shape == prof.sides.shape and len(prof.valid) >= 3}
    if not usable:
        return out
    # the background's lit ground between the tracks: a strip darker than that holds a shadow
    # in the background itself (a train parked there for most of its scenes), and a car's
    # shadow cannot darken it further
    strips = np.concatenate([np.mean(background[k].sides, axis=2).ravel() for k in usable])
    strips = strips[np.isfinite(strips)]
    ground = float(np.median(strips)) if strips.size else np.inf
    for k, prof in usable.items():
        bg = background[k]
        along = track_direction(prof.positions)
        # the normal as `sample_track` turns it (the strips' -/+ sides)
        across = np.column_stack([-along[:, 1], along[:, 0]]) @ towards
        # a shadow reaches past the body's edge only across the track, and only so far
        beyond = np.abs(across) * shadow_length_per_m(sun_elevation_deg)
        needed = p.side_strip_m - p.car_half_width_m + 0.5
        side = np.where(across < 0, 0, 1)
        rows = np.arange(len(side))
        strip = _darkening(prof.sides[rows, side], bg.sides[rows, side])
        centre = _darkening(prof.values, bg.values)
        aside = np.abs(across) >= p.own_shadow_min_across
        shaded = aside & (p.car_min_height_m * beyond >= needed) & (strip >= p.own_shadow_min_dark) \
            & (centre <= p.own_shadow_max_centre_dark)
        open_ground = np.mean(bg.sides[rows, side], axis=1) >= (1 - p.own_shadow_min_dark) * ground
        lit = aside & (p.own_shadow_low_car_m * beyond >= needed) & (strip <= p.own_shadow_lit_max) \
            & open_ground
        for found, mask in ((out.cars, shaded), (out.none, lit)):
            step = prof.step_m
            stretches = [(a * step, b * step) for a, b in runs(mask)
                         if (b - a) * step >= 0.5 * car_pitch_m]
            if stretches:
                found[k] = stretches
    return out


def _darkening(values: npt.NDArray[np.float32], background: npt.NDArray[np.float32]) -> Floats:
    """The share of the background's brightness (mean over bands) lost; NaN (never over a
    threshold) where either is not known."""
    with np.errstate(invalid="ignore", divide="ignore"):
        now = np.mean(values.astype(np.float64), axis=1)
        before = np.mean(background.astype(np.float64), axis=1)
        lost: Floats = np.where(before > 0, 1.0 - now / before, np.nan)
    return lost
