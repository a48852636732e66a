"""How far the count could be off because the neighbour model had to choose.

At 3 m GSD a car's shadow on a neighbouring siding and a dark car there look alike;
`neighbours.explained_mask` picks one reading and the count interval should cover the other.
A low sun casts a car's shadow over two sidings, beyond what the neighbour model explains
(the simulated benchmark over-counts winter scenes by that): stretches counted as cars that
look like a shadow (darker than the background by a similar fraction in every band) next to an
occupied stretch of another track within the shadow's reach are "doubtful", and the interval's
low end leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from railwatch.core.occupancy import TrackScore, runs
from railwatch.core.types import BoolArray, DetectorParams

Floats = npt.NDArray[np.float64]
Segments = Sequence[tuple[float, float]]


def _cars(segs: Segments, pitch: float, p: DetectorParams) -> float:
    return sum((e - s + p.coupler_gap_m) / pitch for s, e in segs)


def _samples(segs: Segments, step: float, n: int) -> BoolArray:
    mask = np.zeros(n, dtype=bool)
    for s, e in segs:
        mask[max(int(s // step), 0) : min(int(np.ceil(e / step)), n)] = True
    return mask


def _shadow_like(score: TrackScore, sel: BoolArray, p: DetectorParams) -> bool:
    """Most samples darker than the background by nearly the same fraction in every band (a
    shadow scales the ballast's spectrum; a roof, even a grey one, changes its shape)."""
    change, ok = score.relative_change()
    sel = sel & ok
    if not sel.any():
        return False
    frac = -change[sel]
    low, high = frac.min(axis=1), frac.max(axis=1)
    like = (low > 0.05) & (high < p.shadow_like_band_ratio * low)
    return float(like.mean()) >= 0.7


def _points(scores: Mapping[str, TrackScore], masks: Mapping[str, BoolArray], but: str) -> Floats:
    """Positions of the masked samples of every track but `but`."""
    parts = [scores[o].positions[masks[o]] for o in scores
             if o != but and scores[o].positions.shape[0] == masks[o].shape[0]]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def _near_share(points: Floats, where: Floats, reach_px: float,
                towards: Floats | None = None) -> float:
    """Share of `where` with a point within `reach_px` (and, given `towards`, lying that way)."""
    if points.shape[0] == 0 or where.shape[0] == 0:
        return 0.0
    dist, idx = cKDTree(points).query(where, distance_upper_bound=reach_px)
    found = np.isfinite(dist)
    if towards is not None:
        safe = np.where(found, idx, 0)
        found &= (points[safe] - where) @ towards > 0
    return float(found.mean())


def far_shadows(
    scores: Mapping[str, TrackScore],
    kept: Mapping[str, Segments],
    suppressed: Mapping[str, BoolArray],
    gsd_m: float,
    params: DetectorParams,
    shadow_direction: Floats | None,
    reach_m: float | None = None,
) -> dict[str, list[tuple[float, float]]]:
    """Kept stretches that are the far end of a low sun's shadow: shadow-like, with no loaded
    track beside them but one a siding further towards the sun (within `shadow_reach_m`), and
    the siding in between shaded too (its evidence explained away as a shadow). Those are not
    cars. Nothing is dropped when the shadow's direction (pixel axes) is not known. `reach_m`:
    how far shadows reach (from the sun's elevation; `shadow_reach_m` when not known)."""
    p = params
    reach = p.shadow_reach_m if reach_m is None else reach_m
    if shadow_direction is None:
        return {k: [] for k in scores}
    sunward = -np.asarray(shadow_direction, dtype=np.float64)
    occupied = {k: _samples(kept.get(k, ()), s.step_m, s.z.shape[0]) for k, s in scores.items()}
    shaded = {k: s.usable & (s.z >= p.low_z) & suppressed.get(k, np.zeros_like(s.usable))
              for k, s in scores.items()}
    out: dict[str, list[tuple[float, float]]] = {}
    for k, score in scores.items():
        out[k] = []
        if score.positions.shape[0] != score.z.shape[0]:
            continue
        loaded, between = _points(scores, occupied, k), _points(scores, shaded, k)
        for seg in kept.get(k, ()):
            sel = _samples([seg], score.step_m, score.z.shape[0])
            where = score.positions[sel]
            far = _near_share(loaded, where, reach / gsd_m, sunward)
            close = _near_share(loaded, where, p.neighbour_max_m / gsd_m)
            dark = _near_share(between, where, p.neighbour_max_m / gsd_m)
            if far >= 0.5 and close < 0.5 and dark >= 0.5 and _shadow_like(score, sel, p):
                out[k].append(seg)
    return out


def doubtful_cars(
    scores: Mapping[str, TrackScore],
    kept: Mapping[str, Segments],
    car_pitch_m: float,
    gsd_m: float,
    params: DetectorParams,
    reach_m: float | None = None,
) -> dict[str, float]:
    """Cars per track counted on stretches that may be shadows (module docstring); `kept` are
    the segments counted; `reach_m` as in `far_shadows`."""
    p = params
    reach = p.shadow_reach_m if reach_m is None else reach_m
    occupied = {k: _samples(kept.get(k, ()), s.step_m, s.z.shape[0]) for k, s in scores.items()}
    doubtful: dict[str, float] = {}
    for k, score in scores.items():
        others = [scores[o].positions[occupied[o]] for o in scores
                  if o != k and scores[o].positions.shape[0] == occupied[o].shape[0]]
        points = np.concatenate(others) if others else np.zeros((0, 2))
        doubtful[k] = 0.0
        if points.shape[0] == 0 or score.positions.shape[0] != score.z.shape[0]:
            continue
        tree = cKDTree(points)
        for seg in kept.get(k, ()):
            sel = _samples([seg], score.step_m, score.z.shape[0])
            dist, _ = tree.query(score.positions[sel], distance_upper_bound=reach / gsd_m)
            beside = float(np.isfinite(dist).mean()) if dist.size else 0.0
            if beside >= 0.5 and _shadow_like(score, sel, p):
                doubtful[k] += _cars([seg], car_pitch_m, p)
    return doubtful


def shadowed_cars(
    scores: Mapping[str, TrackScore],
    explained: Mapping[str, BoolArray],
    car_pitch_m: float,
    params: DetectorParams,
) -> dict[str, float]:
    """Cars per track that may stand where the neighbour model read a shadow or a leak: strong
    evidence (z ≥ `high_z`) explained away, in stretches of at least `min_segment_car_fraction`
    of a car. The other reading of `doubtful_cars`: a dark train in a loaded neighbour's shadow
    looks just like the shadow, so the interval's high end keeps them."""
    p = params
    shortest = p.min_segment_car_fraction * car_pitch_m
    out: dict[str, float] = {}
    for k, score in scores.items():
        strong = explained.get(k, np.zeros(score.z.shape, dtype=bool)) & (score.z >= p.high_z)
        metres = [(b - a) * score.step_m for a, b in runs(strong)]
        out[k] = sum(m for m in metres if m >= shortest) / car_pitch_m
    return out

