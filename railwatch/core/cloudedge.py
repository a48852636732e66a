"""Evidence a cloud may have made: weak, even changes just beside the masked part of a scene.

A usable-data mask stops where a cloud's veil or its shadow's penumbra falls below its
threshold, so a few metres past every masked area the ground is still a little brighter or
darker in every band (3 m bench: 5–10 % darker over 10–25 m of track beside masked cloud
shadow, enough to read as a car or two). A car differs from its ballast by more, or in colour.
So near masked samples (along the track, or on a siding beside it) a change that is weak and of
one sign and similar size in every band is not taken as a car: clouds never add cars. A faint
cloud shadow no mask flagged at all (3 m bench: 6-10 % darker over 25 m of the outer track,
3-7 % on the next, 2-5 % two sidings away) is told by its width: the same weak, even change
shows on the next siding and on one two sidings across, where no car's leak or shallow shadow
reaches (a dark train leaks into both its neighbours alike, but is no weak change itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from scipy import ndimage

from railwatch.core.occupancy import TrackScore, even_change, smooth_along, smoothing_width
from railwatch.core.tracklinks import Link, links
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile


def within_cloud_reach(scores: Mapping[str, TrackScore], gsd_m: float, params: DetectorParams
                       ) -> dict[str, list[Link]]:
    """The neighbouring tracks' samples within `cloud_edge_m` (geometry only: a masked
    neighbour counts; the veil tests ask for usable samples themselves)."""
    return links(scores, gsd_m, replace(params, neighbour_max_m=params.cloud_edge_m),
                 usable_only=False)


def near_masked(
    scores: Mapping[str, TrackScore],
    profiles: Mapping[str, TrackProfile],
    across: Mapping[str, list[Link]],
    params: DetectorParams,
) -> dict[str, BoolArray]:
    """Per track, samples within `cloud_edge_m` of a masked sample on the image footprint:
    along the same track, or on a neighbouring track within that distance (`across`, from
    `within_cloud_reach`; off the scene's footprint is no cloud)."""
    p = params
    masked = {
        k: profiles[k].covered_mask & ~s.usable if k in profiles else np.zeros_like(s.usable)
        for k, s in scores.items()
    }
    out: dict[str, BoolArray] = {}
    for k, s in scores.items():
        width = 2 * max(round(p.cloud_edge_m / s.step_m), 1) + 1
        out[k] = np.asarray(ndimage.maximum_filter1d(masked[k], width, mode="constant"), dtype=bool)
    for k, found in across.items():
        for link in found:
            out[k] |= link.near & masked[link.other][link.j]
    return out


def veil_like(score: TrackScore, params: DetectorParams) -> BoolArray:
    """Samples whose change from the background is weak (every band within
    `cloud_edge_max_change` of its background) and even: one sign in every band, fractions
    within `shadow_max_band_ratio` of each other."""
    frac, ok = score.relative_change()
    weak = np.abs(frac).max(axis=1) <= params.cloud_edge_max_change
    return np.asarray(ok & even_change(frac, params.shadow_max_band_ratio) & weak, dtype=bool)


def cloud_edge_mask(
    scores: Mapping[str, TrackScore],
    profiles: Mapping[str, TrackProfile],
    gsd_m: float,
    params: DetectorParams,
    unmasked_shadows: bool = True,
) -> dict[str, BoolArray]:
    """Per track, samples a nearby cloud or cloud shadow may explain (True = not a car).

    `unmasked_shadows`: also look for faint cloud shadows no mask flagged
    (`changed_alike_afar`); only against a real background: measured against the scene's own
    running median, a loaded yard's changes are alike on every siding."""
    if params.cloud_edge_m <= 0:
        return {k: np.zeros(s.z.shape, dtype=bool) for k, s in scores.items()}
    across = within_cloud_reach(scores, gsd_m, params)
    near = near_masked(scores, profiles, across, params)
    veil = {k: veil_like(s, params) for k, s in scores.items()}
    if not unmasked_shadows:
        return {k: veil[k] & near[k] for k in scores}
    # a faint shadow found afar stands for the cloud a mask would have flagged: its sidings
    # within reach are judged as beside a masked one
    alike = changed_alike_afar(scores, veil, across, gsd_m, params)
    far = {k: m & veil[k] for k, m in alike.items()}
    beside = {k: m.copy() for k, m in far.items()}
    for k, found in across.items():
        for link in found:
            beside[k] |= link.near & far[link.other][link.j]
    return {k: veil[k] & (near[k] | beside[k]) for k in scores}


def changed_alike_afar(
    scores: Mapping[str, TrackScore],
    veil: Mapping[str, BoolArray],
    across: Mapping[str, list[Link]],
    gsd_m: float,
    params: DetectorParams,
) -> dict[str, BoolArray]:
    """Per track, samples whose change both a track `cloud_far_min_m`..`cloud_edge_m` across
    and one nearer (of the `across` links) share: veil-like there too, of the same sign and at
    least `cloud_far_share` of its size (both averaged over a few metres). A faint cloud shadow
    or haze spans sidings; a car changes its own track, leaks into the next one and shades it
    deeply, no further."""
    p = params
    out = {k: np.zeros(s.z.shape, dtype=bool) for k, s in scores.items()}
    if p.cloud_far_share <= 0:
        return out
    level = {}
    for k, s in scores.items():
        frac, ok = s.relative_change()
        width = smoothing_width(s.step_m, p) * 2 + 1
        level[k] = smooth_along(frac, ok, width).mean(axis=1)
    for k, found in across.items():
        s = scores[k]
        near, far = np.zeros_like(out[k]), np.zeros_like(out[k])
        for link in found:
            t = scores[link.other]
            dist = np.hypot(*(s.positions - t.positions[link.j]).T) * gsd_m
            theirs = level[link.other][link.j]
            alike = link.near & veil[link.other][link.j] & (np.sign(theirs) == np.sign(level[k])) & (
                np.abs(theirs) >= p.cloud_far_share * np.abs(level[k]))
            far |= alike & (dist >= p.cloud_far_min_m)
            near |= alike & (dist < p.cloud_far_min_m)
        # the siding between changed alike too: a dark train leaks into both of its neighbours
        # alike, but is itself no weak change
        out[k] = near & far
    return out
