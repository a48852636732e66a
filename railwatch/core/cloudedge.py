"""Evidence a cloud may have made: weak, even changes just beside the masked part of a scene.

A usable-data mask stops where a cloud's veil or its shadow's penumbra falls below its
threshold, so a few metres past every masked area the ground is still a little brighter or
darker in every band (3 m bench: 5–10 % darker over 10–25 m of track beside masked cloud
shadow, enough to read as a car or two). A car differs from its ballast by more, or in colour.
So near masked samples (along the track, or on a siding beside it) a change that is weak and of
one sign and similar size in every band is not taken as a car: clouds never add cars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from scipy import ndimage

from railwatch.core.occupancy import TrackScore
from railwatch.core.tracklinks import links
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile


def near_masked(
    scores: Mapping[str, TrackScore],
    profiles: Mapping[str, TrackProfile],
    gsd_m: float,
    params: DetectorParams,
) -> dict[str, BoolArray]:
    """Per track, samples within `cloud_edge_m` of a masked sample on the image footprint:
    along the same track, or on a neighbouring track within that distance (off the scene's
    footprint is no cloud)."""
    p = params
    masked = {
        k: profiles[k].covered_mask & ~s.usable if k in profiles else np.zeros_like(s.usable)
        for k, s in scores.items()
    }
    out: dict[str, BoolArray] = {}
    for k, s in scores.items():
        width = 2 * max(round(p.cloud_edge_m / s.step_m), 1) + 1
        out[k] = np.asarray(ndimage.maximum_filter1d(masked[k], width, mode="constant"), dtype=bool)
    across = links(scores, gsd_m, replace(p, neighbour_max_m=p.cloud_edge_m), usable_only=False)
    for k, found in across.items():
        for link in found:
            out[k] |= link.near & masked[link.other][link.j]
    return out


def veil_like(score: TrackScore, params: DetectorParams) -> BoolArray:
    """Samples whose change from the background is weak (every band within
    `cloud_edge_max_change` of its background) and even: one sign in every band, fractions
    within `shadow_max_band_ratio` of each other."""
    frac, ok = score.relative_change()
    size = np.abs(frac)
    same_sign = np.all(frac > 0, axis=1) | np.all(frac < 0, axis=1)
    even = size.max(axis=1) <= params.shadow_max_band_ratio * np.maximum(size.min(axis=1), 1e-6)
    weak = size.max(axis=1) <= params.cloud_edge_max_change
    return np.asarray(ok & same_sign & even & weak, dtype=bool)


def cloud_edge_mask(
    scores: Mapping[str, TrackScore],
    profiles: Mapping[str, TrackProfile],
    gsd_m: float,
    params: DetectorParams,
) -> dict[str, BoolArray]:
    """Per track, samples a nearby cloud or cloud shadow may explain (True = not a car)."""
    if params.cloud_edge_m <= 0:
        return {k: np.zeros(s.z.shape, dtype=bool) for k, s in scores.items()}
    near = near_masked(scores, profiles, gsd_m, params)
    return {k: near[k] & veil_like(s, params) for k, s in scores.items()}
