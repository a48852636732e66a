"""Which samples of neighbouring tracks lie next to each other: the geometry the neighbour
model (neighbours.py) works on.

It depends on the AOI's track lines only, so it is computed once per AOI geometry and kept in a
small LRU: every scene of an AOI reuses it. The nearest neighbouring sample is found by asking a
KD-tree for every 8th sample only and following the track in between.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from railwatch.core.occupancy import TrackScore
from railwatch.core.types import BoolArray, DetectorParams

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Link:
    """Track `owner`'s view of track `other`: nearest sample per position, and where it lies."""

    other: str
    j: Ints  # (S,) nearest sample index on `other`
    near: BoolArray  # (S,) within reach (and usable on both, as `links` asks by default)
    unit: Floats  # (S, 2) unit vector owner sample -> other sample (pixel axes)


def _step_px(pos: Floats) -> float:
    return float(np.max(np.hypot(*np.diff(pos, axis=0).T), initial=0.0)) if len(pos) > 1 else 0.0


def _nearest(
    tree: cKDTree, other: Floats, pos: Floats, reach: float, stride: int = 8, half: int = 4
) -> tuple[Floats, Ints] | None:
    """(distance, index) of the nearest `other` sample for each of `pos` (both ordered along
    their tracks), or None when no sample comes within `reach`.

    The tree is asked for every `stride`-th sample only; the indices in between follow the
    track (interpolated) and are refined among ±`half` candidates: exact wherever the two tracks
    run alongside, at a fraction of the queries.
    """
    n = pos.shape[0]
    anchors = np.unique(np.r_[np.arange(0, n, stride), n - 1])
    dist, j = tree.query(pos[anchors], distance_upper_bound=reach + stride * _step_px(pos))
    found = np.isfinite(dist)
    if not found.any():
        return None
    guess = np.rint(np.interp(np.arange(n), anchors[found], j[found])).astype(np.intp)
    cand = np.clip(guess[:, None] + np.arange(-half, half + 1), 0, other.shape[0] - 1)
    d2 = np.sum((other[cand] - pos[:, None, :]) ** 2, axis=2)
    best = np.argmin(d2, axis=1)
    rows = np.arange(n)
    return np.sqrt(d2[rows, best]), cand[rows, best]


def _close_pairs(positions: list[Floats], reach: float, stride: int = 16) -> BoolArray:
    """(T, T): which tracks come within `reach` of each other anywhere, from every `stride`-th
    sample of each (one small distance matrix instead of a tree query per pair of tracks)."""
    coarse = [p[::stride] for p in positions]
    sizes = [len(c) for c in coarse]
    pts = np.concatenate(coarse)
    d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    starts = np.cumsum([0, *sizes[:-1]])
    per_pair = np.minimum.reduceat(np.minimum.reduceat(d, starts, axis=1), starts, axis=0)
    slack = reach + stride * max(_step_px(p) for p in positions)
    return np.asarray(per_pair <= slack, dtype=bool)


_Geometry = list[tuple[str, str, Ints, Floats, Floats]]  # (track, other, j, distance, unit)
_GEOMETRY_CACHE: OrderedDict[bytes, _Geometry] = OrderedDict()
_GEOMETRY_CACHE_SIZE = 8
GEOMETRY_REACH_M = 24.0  # beyond the longest shadow reach and the cloud-edge distance
_GEOMETRY_LOCK = threading.Lock()  # Dask/Prefect may run scenes in threads


def _pair_geometry(positions: Mapping[str, Floats], reach: float) -> _Geometry:
    """Nearest neighbouring-track sample of every sample, for each pair of tracks that come
    within `reach` (pixels): depends on the AOI's track geometry only, so it is memoised (a
    small LRU keyed by the positions' bytes) across the scenes of an AOI."""
    digest = hashlib.blake2b(repr((sorted(positions), reach)).encode(), digest_size=16)
    for k in sorted(positions):
        digest.update(np.ascontiguousarray(positions[k]).tobytes())
    key = digest.digest()
    with _GEOMETRY_LOCK:
        if key in _GEOMETRY_CACHE:
            _GEOMETRY_CACHE.move_to_end(key)
            return _GEOMETRY_CACHE[key]
    keys = list(positions)
    close = _close_pairs([positions[k] for k in keys], reach)
    trees: dict[str, cKDTree] = {}
    out: _Geometry = []
    for a, k in enumerate(keys):
        for b, other in enumerate(keys):
            if a == b or not close[a, b]:
                continue
            if other not in trees:
                trees[other] = cKDTree(positions[other])
            nearest = _nearest(trees[other], positions[other], positions[k], reach)
            if nearest is None:
                continue
            dist, j = nearest
            if not np.any(dist <= reach):
                continue
            vec = positions[other][j] - positions[k]
            unit = vec / np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)[:, None]
            for arr in (j, dist, unit):
                arr.flags.writeable = False  # shared by every scene of the AOI
            out.append((k, other, j, dist, unit))
    with _GEOMETRY_LOCK:
        _GEOMETRY_CACHE[key] = out
        while len(_GEOMETRY_CACHE) > _GEOMETRY_CACHE_SIZE:
            _GEOMETRY_CACHE.popitem(last=False)
    return out


def links(scores: Mapping[str, TrackScore], gsd_m: float, params: DetectorParams,
          usable_only: bool = True) -> dict[str, list[Link]]:
    """Neighbouring-track samples within `neighbour_max_m` of each track's samples (`near`:
    and usable on both, unless `usable_only` is False: the geometry alone)."""
    have = {k: s for k, s in scores.items() if s.positions.shape[0] == s.z.shape[0] > 0}
    out: dict[str, list[Link]] = {k: [] for k in scores}
    if len(have) < 2:
        return out
    reach = params.neighbour_max_m / gsd_m
    # one geometry per AOI serves every reach up to GEOMETRY_REACH_M (the shadow reach follows
    # the sun's elevation, so it differs from scene to scene)
    computed = max(reach, GEOMETRY_REACH_M / gsd_m)
    for k, other, j, dist, unit in _pair_geometry({k: s.positions for k, s in have.items()},
                                                  computed):
        near = dist <= reach
        if usable_only:
            near = near & have[k].usable & have[other].usable[j]
        if near.any():
            out[k].append(Link(other, j, near, unit))
    return out
