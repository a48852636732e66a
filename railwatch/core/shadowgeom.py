"""Where a car's shadow falls, from the sun's azimuth and elevation and the track geometry.

With the sun known, the shadow of a car of height h on one siding covers, across the tracks, the
ground from the car's edge to h / tan(elevation) × (the shadow direction's across-track share)
beyond it, and is displaced along the track by the along-track share. How much of a
neighbouring siding's sample that covers is geometry, not a learnt guess: a winter sun may shade
the next siding fully and the one beyond in part, a summer noon sun neither. The neighbour model
(neighbours.py) bounds the shadow it may explain on each sample by this coverage: at most the
tallest car's (`car_max_height_m`), at least the lowest's (`car_least_height_m`, a gondola: it
was the usual cars' `car_min_height_m`, and at 0.5 m a 41° sun's gondola shadow, darkening the
next siding a quarter of a full one, then had to be a train there). The optics and the profile's
interpolation blur the shadow's edges (a Gaussian of `shadow_blur_px`): a full shadow on the
next siding still darkens the one beyond a little (without the blur, low-sun clear scenes
passed 7/10 on the 3 m bench). The blur spreads the shadow's darkening, it adds none: counted as
a longer shadow instead, a summer shadow that ends inside the next siding's sample covered
0.94 of it, and a loaded siding's shadow explained away the train beside it (3 m bench with the
sun, detector 0.4.10: clear 9 -> 10/10, low contrast 8 -> 10/10).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.jit import compiled
from railwatch.core.occupancy import TrackScore
from railwatch.core.robust import median
from railwatch.core.tracklinks import Link
from railwatch.core.types import DetectorParams

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True)
class CastLink:
    """How car shadows on track `link.other` cover the owner's samples: the coverage (0..1) of
    each owner sample by the shadow of the lowest, a usual and the tallest car on the nearest
    caster sample, and the along-track displacement of the shadow (caster samples to look back
    over)."""

    link: Link
    least: Floats  # (S,) coverage by the lowest car's shadow: the least a shadow darkens there
    low: Floats  # (S,) coverage by the shortest usual car's shadow (learning the full shadow)
    high: Floats  # (S,) coverage by the tallest car's shadow
    offsets: Ints  # caster sample offsets whose cars may shade the nearest caster sample's place


def shadow_length_per_m(sun_elevation_deg: float) -> float:
    """Metres of ground shadow per metre of height."""
    return float(1.0 / np.tan(np.deg2rad(max(sun_elevation_deg, 5.0))))


def track_direction(positions: Floats) -> Floats:
    """Unit vector along the track at every sample (pixel axes)."""
    if positions.shape[0] < 2:
        return np.tile([1.0, 0.0], (positions.shape[0], 1))
    d = np.gradient(positions, axis=0)
    return np.asarray(d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None], dtype=np.float64)


@compiled
def _blurred_covers(dist: Any, near: Any, half: float, body: float, reaches: Any,
                    sigma: float) -> Any:
    """Per height h (rows of `reaches` (H, S): the far edge of h's shadow) and sample: the share
    of the sample's footprint [dist - half, dist + half] covered by the ground [body, reach]
    blurred by a Gaussian of `sigma` metres (0 where not `near`). A blurred edge spreads a
    shadow's darkening, it does not add to it: ∫ over the footprint of the blurred indicator,
    with ∫ Φ(u) du = u Φ(u) + φ(u). One compiled pass (numpy evaluated a dozen erf arrays per
    link)."""
    out = np.zeros(reaches.shape)
    width = 2.0 * half
    root2 = math.sqrt(2.0)
    norm = 1.0 / math.sqrt(2.0 * math.pi)
    for h in range(reaches.shape[0]):
        for i in range(dist.size):
            if not near[i]:
                continue
            lo = dist[i] - half
            hi = dist[i] + half
            b = reaches[h, i]
            if sigma <= 0.0:
                length = min(hi, b) - max(lo, body)
            else:
                length = 0.0
                for x, sign in ((hi, 1.0), (lo, -1.0)):
                    for edge, inner in ((body, 1.0), (b, -1.0)):
                        u = (x - edge) / sigma
                        g = u * 0.5 * math.erfc(-u / root2) + norm * math.exp(-0.5 * u * u)
                        length += sign * inner * sigma * g
            out[h, i] = max(length, 0.0) / width
    return out


def cast_links(
    scores: Mapping[str, TrackScore],
    wide: Mapping[str, list[Link]],
    direction: Floats,
    sun_elevation_deg: float,
    gsd_m: float,
    params: DetectorParams,
) -> dict[str, list[CastLink]]:
    """For every track, the neighbouring tracks whose car shadows can reach it (from `wide`
    links, which must reach as far as the longest shadow) and the coverage bounds per sample.

    A sample averages the ground across ±(corridor half-width + half a pixel) of its centreline;
    a car body covers ±`car_half_width_m` of its own; its shadow starts at the body's edge.
    """
    p = params
    per_m = shadow_length_per_m(sun_elevation_deg)
    direction = np.asarray(direction, dtype=np.float64)
    half = p.corridor_half_width_m + 0.5 * gsd_m
    body = p.car_half_width_m
    blur_m = p.shadow_blur_px * gsd_m
    # the lowest, a usual and the tallest car: the covers' rows (least, low, high)
    heights = np.array([p.car_least_height_m, p.car_min_height_m, p.car_max_height_m])
    out: dict[str, list[CastLink]] = {k: [] for k in scores}
    for k, found in wide.items():
        pos_k = scores[k].positions
        for link in found:
            caster = scores[link.other]
            along = track_direction(caster.positions)[link.j]
            normal = np.column_stack([-along[:, 1], along[:, 0]])
            across_share = normal @ direction
            sign = np.where(across_share >= 0, 1.0, -1.0)
            normal *= sign[:, None]  # pointing the way shadows fall
            across_share = np.abs(across_share)
            dist = np.einsum("ni,ni->n", (pos_k - caster.positions[link.j]) * gsd_m, normal)
            reaches = body + heights[:, None] * (per_m * across_share)[None, :]
            least, low, high = _blurred_covers(dist, link.near, half, body, reaches, blur_m)
            if not np.any(high > 0.05):
                continue
            # along-track: the shadow lands `h * per_m * (direction . along)` metres further on
            shift = median(along @ direction) * per_m / caster.step_m
            lo_s, hi_s = sorted((p.car_min_height_m * shift, p.car_max_height_m * shift))
            offsets = np.arange(int(np.floor(lo_s)), int(np.ceil(hi_s)) + 1, dtype=np.intp)
            out[k].append(CastLink(link, least, low, high, offsets))
    return out


def casting(closed: npt.NDArray[np.bool_], offsets: Ints) -> npt.NDArray[np.bool_]:
    """Per sample i of the caster: whether a car stands anywhere on it whose shadow may land
    beside i (its occupancy `closed` looked up `offsets`, a run of whole samples, back along
    the track; clamped at the ends). A running window's count, not one lookup per offset."""
    n = closed.size
    if n == 0 or offsets.size == 0:
        return np.zeros(n, dtype=bool)
    counts = np.concatenate([[0], np.cumsum(closed, dtype=np.intp)])
    i = np.arange(n)
    first = np.clip(i - int(offsets[-1]), 0, n - 1)
    last = np.clip(i - int(offsets[0]), 0, n - 1)
    return np.asarray(counts[last + 1] - counts[first] > 0, dtype=bool)


def full_shadow_darkening(
    scores: Mapping[str, TrackScore],
    cast: Mapping[str, list[CastLink]],
    params: DetectorParams,
) -> Floats | None:
    """The fraction of the ballast's reflectance a full car shadow takes away, per band: from
    samples well covered by the shadow of a strongly evidenced, stronger neighbour whose
    darkening looks like a shadow (similar fraction in every band), each divided by its
    coverage. None when too few such samples (the learnt typical darkening is used then).

    A sample shaded by several casters (a low sun: the next siding's shadow and the one beyond's)
    is in shadow once: its coverage is the largest of theirs, and it counts once. Divided by
    each caster's own coverage, the far siding's partial shadow over a sample the next siding
    shades fully read as a shadow half again as dark as any (3 m dense, 23°: 0.95 of the light
    taken where the scene's shadows take 0.6)."""
    p = params
    values = []
    for k, found in cast.items():
        s = scores[k]
        cover = np.zeros(s.z.shape)
        well = np.zeros(s.z.shape, dtype=bool)
        for c in found:
            casts = scores[c.link.other].z[c.link.j] >= p.high_z
            cover = np.maximum(cover, np.where(casts, 0.5 * (c.low + c.high), 0.0))
            well |= casts & (c.low >= p.full_shadow_min_cover)
        sel = well & s.usable & np.all(s.background > 0, axis=1)
        if not sel.any():
            continue
        frac = -s.diff[sel] / s.background[sel]
        ratio = frac.max(axis=1) / np.maximum(frac.min(axis=1), 1e-6)
        like = (frac.min(axis=1) > 0.02) & (ratio < p.shadow_max_band_ratio)
        if like.any():
            values.append(frac[like] / cover[sel][like, None])
    if not values:
        return None
    allv = np.concatenate(values)
    if allv.shape[0] < p.shadow_min_samples // 2:
        return None
    # the spectrum's shape from the typical sample, its depth from the darker ones: a band-wise
    # percentile would mix samples and bend the shape
    level = allv.mean(axis=1)
    shape = median(allv / np.maximum(level, 1e-6)[:, None], axis=0)
    depth = float(np.percentile(level, p.full_shadow_percentile))
    return np.asarray(np.clip(shape * depth, 0.05, 0.95), dtype=np.float64)
