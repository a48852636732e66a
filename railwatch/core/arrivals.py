"""The self-check's side of measuring a scene: the yard's typical ballast, and the trains
that arrived (evidence no neighbour can have cast or leaked, changed beyond the ballast's
texture) which must stay out of the scene's own ballast.

A background may itself hold cars (a composite of days when a train stood still): where it
stands out from the yard's typical ballast, `measure_scene` also checks evidence against the
scene's own ballast (selfref.py), from which these trains are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core.jit import compiled
from railwatch.core.neighbours import Shadow, m2_of_z, shadow_reach_m
from railwatch.core.occupancy import Floats, TrackScore, even_change, smooth_along, smoothing_width
from railwatch.core.robust import mahalanobis2, median
from railwatch.core.tracklinks import links
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile


def typical_spectrum(background: Mapping[str, TrackProfile]) -> Floats | None:
    """The yard's typical background spectrum: the median of all usable samples (most of a
    background is ballast); None when none is usable."""
    usable = [b.values[b.valid] for b in background.values() if b.valid.any()]
    return median(np.concatenate(usable).astype(np.float64), axis=0) if usable else None


def typical_ballast(background: Mapping[str, TrackProfile], typical: Floats | None
                     ) -> dict[str, TrackProfile]:
    """Every sample replaced by `typical` (`typical_spectrum`)."""
    if typical is None:
        return dict(background)
    return {k: replace(b, values=np.broadcast_to(typical, b.values.shape).astype(b.values.dtype))
            for k, b in background.items()}


def _could_cast_or_leak(scores: Mapping[str, TrackScore], inv: Floats, gsd_m: float,
                        p: DetectorParams, sun_elevation_deg: float | None,
                        shadow: Shadow | None) -> dict[str, BoolArray]:
    """Where a neighbouring track's change, a few metres along either way, may have made this
    one. A leak: up to `neighbour_max_bleed` of a next siding's change, in its colour (what is
    left is no evidence); a weaker change of another colour is the track's own (3 m bench with
    the sun, dense cars MAE 31.7 -> 25.6, bias -31.7 -> -23.4: in a loaded yard every train is
    weaker than one of its neighbours somewhere, and was left in the scene's ballast). A
    shadow that fell or left with its car: every band darker (or brighter) by a like fraction,
    at most `shadow_max_rel` of the scene's typical shadow, beside a change of a car (z >=
    high_z) on the sun's side within a shadow's reach (either side when the side is not
    known); none when the scene shows no shadows. A dark car darker than any shadow is the
    track's own."""
    reach = max(p.neighbour_max_m, shadow_reach_m(sun_elevation_deg, p))
    out = {k: np.zeros(s.z.shape, dtype=bool) for k, s in scores.items()}
    for k, nbrs in links(scores, gsd_m, replace(p, neighbour_max_m=reach)).items():
        s = scores[k]
        grow = 2 * max(round(p.self_check_along_m / s.step_m), 0) + 1
        shadow_like = np.zeros(s.z.shape, dtype=bool)
        if shadow is not None:
            # a shadow that fell, or one that left with the car that cast it: no deeper (the
            # share of light the darker of image and background lost) than a shadow gets
            frac, ok = s.relative_change()
            lost = np.abs(frac / np.where(frac > 0, 1.0 + frac, 1.0))
            shadow_like = ok & even_change(frac, p.shadow_max_band_ratio)
            shadow_like &= lost.mean(axis=1) <= p.shadow_max_rel * float(np.mean(shadow.darkening))
        for link in nbrs:
            other = scores[link.other]
            gap_m = np.hypot(*(other.positions[link.j] - s.positions).T) * gsd_m
            close = link.near & (gap_m <= p.neighbour_max_m)
            out[k] |= _leak_fits(s.diff, other.diff, link.j, close, inv, grow, p)
            if shadow is not None:
                side = link.near if shadow.direction is None else (
                    link.near & (link.unit @ shadow.direction < -0.5))
                car = np.where(side, other.z[link.j], 0.0) >= p.high_z
                out[k] |= shadow_like & ndimage.maximum_filter1d(car, grow)
    return out


def _leak_fits(diff: Floats, other: Floats, j: npt.NDArray[np.intp], close: BoolArray,
               inv: Floats, grow: int, p: DetectorParams) -> BoolArray:
    """Where a fraction (0 .. neighbour_max_bleed) of the neighbour's change, at its nearest
    sample or up to grow // 2 samples along, leaves no evidence (chi-square below low_z's):
    a leak has the neighbour's colour, not only less of its strength."""
    theirs = np.ascontiguousarray(other[j], dtype=np.float64)
    mine = np.ascontiguousarray(diff @ inv, dtype=np.float64)  # x' inv y as a dot product
    out = np.zeros(diff.shape[0], dtype=bool)
    _leak_fits_into(mine, np.einsum("nb,nb->n", mine, diff), theirs,
                    np.einsum("nb,nb->n", theirs @ inv, theirs), np.ascontiguousarray(close),
                    grow // 2, float(p.neighbour_max_bleed), m2_of_z(p.low_z, diff.shape[1]), out)
    return out


@compiled
def _leak_fits_into(mine: Any, own: Any, theirs: Any, their_norm: Any, close: Any, half: int,
                    max_bleed: float, limit: float, out: Any) -> None:
    n, bands = mine.shape
    for i in range(n):
        for r in range(max(i - half, 0), min(i + half, n - 1) + 1):
            if not close[r] or not their_norm[r] > 0.0:
                continue
            cross = 0.0
            for b in range(bands):
                cross += mine[i, b] * theirs[r, b]
            c = min(max(cross / their_norm[r], 0.0), max_bleed)
            if own[i] - 2.0 * c * cross + c * c * their_norm[r] <= limit:
                out[i] = True
                break


def arrivals(
    scores: Mapping[str, TrackScore], typical: Floats, inv: Floats,
    gsd_m: float, p: DetectorParams, sun_elevation_deg: float | None, shadow: Shadow | None,
) -> dict[str, BoolArray]:
    """Per track, the trains that arrived: stretches of evidence (z >= low_z) that no
    neighbour's car can have cast or leaked (`_could_cast_or_leak`) holding a sample that
    changed beyond `self_check_keep_z` towards something other than ballast: the image stands
    farther from the background's typical ballast than the background does (a train arrived,
    not a parked one left; the image's own typical spectrum is a car's when the yard is full).
    `typical`: the background's typical ballast (`typical_spectrum`); `shadow`: the scene's
    car shadows (`scene_shadow`), None when none stand out."""
    beside = _could_cast_or_leak(scores, inv, gsd_m, p, sun_elevation_deg, shadow)
    out: dict[str, BoolArray] = {}
    for k, s in scores.items():
        strong = s.usable & (s.z >= p.self_check_keep_z) & ~beside[k]
        if strong.any():
            rows = np.flatnonzero(strong)
            # the background as smoothed as the difference: beside a train that left, the
            # smoothed difference holds some of the departure, the plain background none
            smooth = smooth_along(s.background, s.usable, smoothing_width(s.step_m, p))
            ground = smooth[rows] - typical
            strong[rows] = mahalanobis2(s.diff[rows] + ground, inv) > mahalanobis2(ground, inv)
        # the whole train, not only its most changed samples: a paler car of it left in the
        # scene's ballast would become the ballast under the rest of the train (not across a
        # change a neighbour may have cast or leaked: that must stay checkable)
        train, _ = ndimage.label(s.usable & (s.z >= p.low_z) & ~beside[k])
        strong = np.isin(train, np.unique(train[strong & (train > 0)]))
        # however much of the track they cover: the ballast under them is bridged from its
        # ends, or is the yard's where none is left
        out[k] = strong
    return out
