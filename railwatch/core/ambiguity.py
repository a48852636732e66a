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

from railwatch.core.occupancy import TrackScore
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
    """All bands darker than the background by similar fractions (the median sample)."""
    sel = sel & score.usable & np.all(score.background > 0, axis=1)
    if not sel.any():
        return False
    frac = np.median(-score.diff[sel] / score.background[sel], axis=0)
    low, high = float(frac.min()), float(frac.max())
    return low > 0.05 and high / low < p.shadow_max_band_ratio


def doubtful_cars(
    scores: Mapping[str, TrackScore],
    kept: Mapping[str, Segments],
    car_pitch_m: float,
    gsd_m: float,
    params: DetectorParams,
) -> dict[str, float]:
    """Cars per track counted on stretches that may be shadows (module docstring); `kept` are
    the segments counted."""
    p = params
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
            dist, _ = tree.query(score.positions[sel], distance_upper_bound=p.shadow_reach_m / gsd_m)
            beside = float(np.isfinite(dist).mean()) if dist.size else 0.0
            if beside >= 0.5 and _shadow_like(score, sel, p):
                doubtful[k] += _cars([seg], car_pitch_m, p)
    return doubtful
