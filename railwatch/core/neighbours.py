"""What a track's neighbours explain: bleed and shadows across sidings 5.3 m apart.

At 3 m GSD a car on one siding reaches the next one in two ways: its roof leaks into the
neighbour's samples (pixel footprint, PSF: a small fraction of the car's own difference, either
side) and its shadow falls across the neighbour on the side away from the sun (a darkening of
the ballast by a scene-wide spectral factor). Both look like a car on the neighbour, and a
tank car looks just like a shadow. The rules here:

- the shadow's side and spectrum are learnt from the scene (darkening beside strong evidence);
- a position is EXPLAINED (not a car) when its difference fits "bleed from stronger neighbours
  + a shadow, only if the sun-side neighbour is occupied" within bounds, UNLESS a car there is
  needed to explain a shadow on its own anti-sun neighbour (a shadow needs a caster);
- a loaded track beside a loaded track has a difference far beyond the bleed bound, or of a
  different colour, so both stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core.neighbourcost import CostModel, car_costs, choose, pack_links
from railwatch.core.occupancy import TrackScore
from railwatch.core.robust import median
from railwatch.core.shadowgeom import CastLink, cast_links, full_shadow_darkening
from railwatch.core.tracklinks import Link, links
from railwatch.core.types import BoolArray, DetectorParams

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Shadow:
    """Where car shadows fall in this scene and how dark they are (per band fraction lost)."""

    direction: Floats | None  # (2,) unit vector towards the shadow side (pixel axes); None:
    # the side could not be told (then either neighbour may cast, and no shadow is required)
    darkening: Floats  # (B,) typical fraction of ballast reflectance lost under a car shadow


def m2_of_z(z: float, dof: int) -> float:
    """Inverse Wilson–Hilferty: the chi-square(dof) value whose z-score is `z`."""
    k = float(dof)
    return float(k * (z * np.sqrt(2.0 / (9.0 * k)) + 1.0 - 2.0 / (9.0 * k)) ** 3)


def shadow_direction_from_sun(azimuth_deg: float) -> Floats:
    """Unit vector (pixel axes: +col east, +row south) in which shadows fall on a north-up grid."""
    az = np.deg2rad(azimuth_deg)
    return np.array([-np.sin(az), np.cos(az)])


def estimate_shadow(
    scores: Mapping[str, TrackScore],
    nbrs: Mapping[str, list[Link]],
    params: DetectorParams,
    direction: Floats | None = None,
) -> Shadow | None:
    """Shadow side and darkening from how the neighbours of strongly loaded samples darken.

    Neighbours weaker than the strong sample are asked (a shadow is weaker than most cars; a
    stronger neighbour is more likely a car of its own); with the side known and too few weaker
    ones, all neighbours on that side (shadows can outshine a grey caster). The side is given (from the
    sun azimuth) or taken as the side of the yard's across-track axis whose neighbours darken
    clearly more on average; a lone dark train and its shadow are symmetric, so the side often
    stays unknown (direction None). The darkening is the median per-band fraction lost over
    shadow-like samples (all bands darker by similar fractions) on that side (or both sides).
    None when there is no clear shadow at all.
    """
    units, fracs, weaker_list = [], [], []
    for k, s in scores.items():
        strong = s.z >= params.high_z
        for link in nbrs.get(k, []):
            t = scores[link.other]
            sel = strong & link.near
            if not sel.any():
                continue
            b = t.background[link.j[sel]]
            ok = np.all(b > 0, axis=1)
            units.append(link.unit[sel][ok])
            fracs.append(-t.diff[link.j[sel]][ok] / b[ok])
            weaker_list.append((t.z[link.j] < s.z)[sel][ok])
    if not units:
        return None
    unit = np.concatenate(units)
    frac = np.concatenate(fracs)
    weaker = np.concatenate(weaker_list)
    if weaker.sum() < params.shadow_min_samples and direction is None:
        return None
    mean = np.clip(frac.mean(axis=1), -0.2, 1.0)
    half = params.shadow_min_samples // 2
    if direction is None:
        # the yard's across-track axis: principal direction of the neighbour offsets
        _, vecs = np.linalg.eigh(unit.T @ unit)
        axis = vecs[:, -1]
        side = np.where(weaker, unit @ axis, 0.0)  # ask only weaker neighbours about the side
        plus, minus = mean[side > 0.5], mean[side < -0.5]
        if plus.size >= half and minus.size >= half:
            margin = float(np.mean(plus) - np.mean(minus))
            if abs(margin) >= params.shadow_side_margin:
                direction = axis if margin > 0 else -axis
    else:
        direction = np.asarray(direction, dtype=np.float64)
    on_side = np.ones(len(unit), dtype=bool) if direction is None else unit @ direction > 0.5
    ratio = frac.max(axis=1) / np.maximum(frac.min(axis=1), 1e-6)
    # darkened by a similar fraction in every band, and clearly (a strong sample whose
    # neighbour stays bright is no caster and says nothing about how dark shadows are)
    shadow_like = on_side & (frac.min(axis=1) > 0.02) & (ratio < params.shadow_max_band_ratio)
    shadow_like &= frac.mean(axis=1) >= params.shadow_min_darkening
    if (shadow_like & weaker).sum() >= half or direction is None:
        shadow_like &= weaker
    # else (side known): shadows stronger than their casters' roofs, e.g. beside gondolas
    if shadow_like.sum() < half:
        return None
    darkening = median(frac[shadow_like], axis=0)
    if float(darkening.mean()) < params.shadow_min_darkening:
        return None
    return Shadow(direction, np.clip(darkening, 0.0, 1.0))


def explained_mask(
    scores: Mapping[str, TrackScore],
    inv: Floats,
    gsd_m: float,
    params: DetectorParams,
    shadow: Shadow | None,
    sun_elevation_deg: float | None = None,
) -> dict[str, BoolArray]:
    """Positions whose difference the neighbouring tracks explain (True = not a car there).

    `shadow`: the scene's car shadows (`scene_shadow`, computed once by the caster), None when
    none stand out. With the sun's elevation known too, where shadows fall is geometry
    (shadowgeom.py): each sample may be shaded by every sun-side track whose cars' shadows
    reach it (a winter sun's past the next siding), by at least the shortest and at most the
    tallest car's coverage of a full shadow, whose darkening is learnt from well-covered samples.

    Occupancy O is chosen to minimise a yard-wide cost: λ per occupied sample (the price of a
    car, the chi-square at `low_z`) plus, per empty sample, the residual of its difference
    after what its occupied neighbours explain (bleed; a shadow from the sun-side neighbour,
    which MUST then be there). Coordinate descent track by track (each sample weighs its own
    cost and its neighbours'): casters first from an empty yard when the shadow side is known,
    else from "every sample with evidence is a car".
    """
    p = params
    nbrs = links(scores, gsd_m, p)
    if not any(nbrs.values()):
        return {k: np.zeros(s.z.shape, dtype=bool) for k, s in scores.items()}
    cast: dict[str, list[CastLink]] | None = None
    shade = None if shadow is None else shadow.darkening
    partners = nbrs
    if shadow is not None and shadow.direction is not None and sun_elevation_deg is not None \
            and sun_elevation_deg > 0:
        # the sun is known: where shadows fall is geometry (shadowgeom.py), and how dark a full
        # one is can be learnt from well-covered samples
        # a shadow touches a sample before its centreline: the footprint's half-width and
        # the shadow's blurred edge both extend the reach (cast_links computes the cover)
        footprint = p.corridor_half_width_m + (0.5 + p.shadow_blur_px) * gsd_m
        reach_m = max(shadow_reach_m(sun_elevation_deg, p) + footprint, p.neighbour_max_m)
        wide = links(scores, gsd_m, replace(p, neighbour_max_m=reach_m))
        found = cast_links(scores, wide, shadow.direction, sun_elevation_deg, gsd_m, p)
        full = full_shadow_darkening(scores, found, p)
        if full is not None:
            cast, shade, partners = found, full, wide
    keys = list(scores)
    offsets = np.concatenate([[0], np.cumsum([scores[k].z.shape[0] for k in keys])]).astype(np.intp)
    model = _cost_model(scores, keys, offsets, nbrs, inv, shadow, p, cast, shade)
    packed = model.bleeding if partners is nbrs else pack_links(keys, offsets, partners)
    evidence = {k: s.usable & (s.z >= p.low_z) for k, s in scores.items()}
    if shadow is not None and shadow.direction is not None:
        # causal order: casters before the tracks they shade, starting from an empty yard
        occupied = np.zeros(offsets[-1], dtype=bool)
        towards = shadow.direction
        order = sorted(scores, key=lambda k: _along(scores[k], towards))
    else:
        occupied = np.concatenate([evidence[k] for k in keys])
        order = sorted(scores, key=lambda k: float(np.max(scores[k].z, initial=0.0)))
    index = {k: t for t, k in enumerate(keys)}
    own = {k: slice(offsets[t], offsets[t + 1]) for k, t in index.items()}  # views of a track
    closed = np.concatenate([_closed(scores[k], occupied[own[k]], p) for k in keys])
    asked = None
    if cast is not None:  # the samples whose cost as a car a sweep may ask for
        beside = _asked_rows(partners, evidence)
        asked = np.concatenate([beside[k] for k in keys])
    lam = m2_of_z(p.low_z, inv.shape[0])
    for _ in range(p.neighbour_iterations):
        changed = False
        # with shadows placed by geometry, a neighbour that must be a car also needs its own
        # shadow on ITS anti-sun side: that missing shadow is part of what "a car there" costs
        car_cost = None if asked is None else car_costs(model, packed, asked, occupied, closed, lam)
        for k in order:
            idx = np.flatnonzero(evidence[k])
            if idx.size == 0:
                continue
            # this track's samples against, per neighbour, its samples under each whole-track
            # hypothesis for k (empty, then car; the neighbour can always be a car itself).
            # Trains are closed over coupler gaps: a lone sample flipped among occupied ones
            # would change nothing.
            new = choose(model, packed, index[k], idx, occupied, closed, lam, car_cost)
            mine = occupied[own[k]]
            if np.any(new != mine[idx]):
                changed = True
                mine[idx] = new
                closed[own[k]] = _closed(scores[k], mine, p)
        if not changed:
            break
    return {k: evidence[k] & ~occupied[own[k]] for k in scores}


def _closed(score: TrackScore, occupied: BoolArray, params: DetectorParams) -> BoolArray:
    """A track's occupancy with gaps up to `caster_close_m` closed: a train has no holes, a
    neighbour's coupler gap still casts and leaks."""
    width = max(round(params.caster_close_m / score.step_m), 1)
    return np.asarray(ndimage.maximum_filter1d(occupied, width), dtype=bool)


def _cost_model(scores: Mapping[str, TrackScore], keys: list[str], offsets: Ints,
                nbrs: Mapping[str, list[Link]], inv: Floats, shadow: Shadow | None,
                p: DetectorParams, cast: Mapping[str, list[CastLink]] | None,
                shade: Floats | None) -> CostModel:
    """What the cost of an empty sample needs: whitened differences and norms, the shadow
    model. `cast` (the sun known, shadowgeom.py): per track, the neighbours whose shadows may
    reach it and how much of each sample they cover; `shade` is then a FULL shadow's
    darkening. Without it the adjacent sun-side neighbour casts, within learnt bounds of the
    typical darkening."""
    shade = np.ones(inv.shape[0]) if shade is None else shade
    white = np.asarray(np.linalg.cholesky(inv).T, dtype=np.float64)  # |W x|² = x'inv x
    wdiff = [scores[k].diff @ white.T for k in keys]
    side = None if shadow is None else shadow.direction
    return CostModel(
        offsets=offsets,
        wdiff=np.ascontiguousarray(np.concatenate(wdiff), dtype=np.float64),
        norm2=np.concatenate([np.einsum("nb,nb->n", w, w) for w in wdiff]),
        # the darkening column: a shadow's spectrum when one is known, plain ballast otherwise
        wdark=np.ascontiguousarray(np.concatenate(
            [(-(shade * scores[k].background)) @ white.T for k in keys]), dtype=np.float64),
        bleeding=pack_links(keys, offsets, nbrs, side),
        casts=None if cast is None else pack_links(keys, offsets, cast),
        has_shadow=shadow is not None, side_known=side is not None,
        # never above the largest leak, nor above zero (a positive floor would force a leak)
        least_leak=min(p.neighbour_min_coef, 0.0, p.neighbour_max_bleed),
        max_bleed=p.neighbour_max_bleed, shadow_min_rel=p.shadow_min_rel,
        shadow_max_rel=p.shadow_max_rel,
        # a car's roof leaking in replaces the bright ballast between the tracks, not this
        # track's darker sleeper line: a leak also darkens a little
        leak_dark=p.leak_darkening / max(float(np.mean(shade)), 1e-6),
        # leaks are usually a small fraction of the neighbour: large ones cost (a soft prior);
        # the leak and shadow models are approximate (roof patterns, partial cover, tints):
        # each component's residual may grow with what was explained there
        ridge=1.0 / p.bleed_typical**2, model_error=p.neighbour_model_error)


def _asked_rows(partners: Mapping[str, list[Link]], evidence: Mapping[str, BoolArray]
                ) -> dict[str, BoolArray]:
    """Per track, the samples whose cost as a car a sweep may ask for: those beside another
    track's evidence (the cost of each sample is independent of the others')."""
    asked = {k: np.zeros(e.shape, dtype=bool) for k, e in evidence.items()}
    for k, found in partners.items():
        for link in found:
            asked[link.other][link.j[evidence[k] & link.near]] = True
    return asked


def scene_shadow(scores: Mapping[str, TrackScore], gsd_m: float, params: DetectorParams,
                 sun_azimuth_deg: float | None = None) -> Shadow | None:
    """The scene's car shadows: their side from the sun when known, and darkening, as learnt
    beside strong evidence (`estimate_shadow`)."""
    direction = None if sun_azimuth_deg is None else shadow_direction_from_sun(sun_azimuth_deg)
    return estimate_shadow(scores, links(scores, gsd_m, params), params, direction)


def shadow_reach_m(sun_elevation_deg: float | None, params: DetectorParams) -> float:
    """How far across a car's shadow may reach: the tallest car's shadow plus half a car's
    width; the neighbour reach when the elevation is not known."""
    if sun_elevation_deg is None or sun_elevation_deg <= 0:
        return params.neighbour_max_m
    length = params.car_max_height_m / np.tan(np.deg2rad(max(sun_elevation_deg, 5.0)))
    return float(min(length + params.car_half_width_m, params.shadow_reach_max_m))


def _along(score: TrackScore, direction: Floats) -> float:
    """Mean position of a track's samples along `direction` (pixel axes)."""
    if score.positions.shape[0] == 0:
        return 0.0
    return float(np.mean(score.positions @ direction))
