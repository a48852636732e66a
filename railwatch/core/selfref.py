"""A background from the scene alone, for AOIs without a reference or history yet.

Along a track the ballast is the dominant material: the background at each position is the
running median of the ballast-like samples of that track (those close to the yard's typical
spectrum, then close to the first local estimate), so trains drop out of their own background
and stretches under a long train are bridged from the ballast on either side.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from railwatch.core.robust import chi_to_z, robust_covariance
from railwatch.core.types import DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]


def _alternate_inf(values: Floats, keep: npt.NDArray[np.bool_]) -> Floats:
    """`values` (n, B) with dropped rows set to +inf and -inf in turn (see masked_median)."""
    side = np.where(np.cumsum(~keep) % 2 == 0, np.inf, -np.inf)
    return np.where(keep[:, None], values, side[:, None])


def _running_medians(
    values: Floats, keep: npt.NDArray[np.bool_], bounds: Sequence[int], window: int
) -> Floats:
    """Per track (rows bounds[i]:bounds[i + 1] of `values` (N, B)): the running median of the
    kept rows within ±window/2, linearly interpolated over positions whose window held no kept
    row (NaN where a whole track has none).

    Computed as a median of block medians (blocks of ~window/8 samples, then a running median
    over the blocks of the window), interpolated between block centres: all tracks at once, laid
    end to end with empty blocks between them, in a few partitions.
    """
    n, bands = values.shape
    block = max(window // 8, 1)
    half = max(round(window / 2 / block), 1)
    # layout: half empty blocks, track 0's blocks, half empty blocks, track 1's blocks, ...
    starts, first = [], half
    for a, b in itertools.pairwise(bounds):
        starts.append(first)
        first += -(-(b - a) // block) + half
    nb = first
    where = np.concatenate(
        [np.arange(b - a) + s * block for (a, b), s in zip(itertools.pairwise(bounds), starts,
                                                          strict=True)]
    )
    padded = np.zeros((nb * block, bands))
    kept = np.zeros(nb * block, dtype=bool)
    padded[where] = np.nan_to_num(values)
    kept[where] = keep
    with np.errstate(invalid="ignore"):
        blocks = np.median(_alternate_inf(padded, kept).reshape(nb, block, bands), axis=1)
    have = np.asarray(np.isfinite(blocks).all(axis=1), dtype=bool)
    side = np.repeat(np.where(np.arange(2 * half) % 2 == 0, np.inf, -np.inf)[:, None], bands, 1)
    ext = np.concatenate([side[:half], _alternate_inf(blocks, have), side[half:]])
    with np.errstate(invalid="ignore"):
        med = np.median(sliding_window_view(ext, 2 * half + 1, axis=0), axis=2)
    ok = np.isfinite(med).all(axis=1)
    # anchors: the good block centres, plus each track's ends held at its outermost value
    anchor_x, anchor_i = [], []
    centres = np.arange(nb) * block + (block - 1) / 2.0
    for (a, b), s in zip(itertools.pairwise(bounds), starts, strict=True):
        good = np.flatnonzero(ok[s : s + -(-(b - a) // block)]) + s
        if good.size:
            anchor_x.append([s * block - 0.5, *centres[good], s * block + (b - a) - 0.5])
            anchor_i.append([good[0], *good, good[-1]])
    out = np.full((n, bands), np.nan)
    if not anchor_x:
        return out
    xs = np.concatenate(anchor_x)
    at = np.concatenate(anchor_i).astype(np.intp)
    gx = where.astype(np.float64)
    for b in range(bands):
        out[:, b] = np.interp(gx, xs, med[at, b])
    # tracks without any good block stay NaN (interp would borrow from a neighbour)
    lone = np.zeros(n, dtype=bool)
    for (a, b), s in zip(itertools.pairwise(bounds), starts, strict=True):
        lone[a:b] = not ok[s : s + -(-(b - a) // block)].any()
    out[lone] = np.nan
    return out


def _z(diff: Floats, inv: npt.NDArray[np.floating[Any]]) -> Floats:
    return chi_to_z(np.einsum("ij,jk,ik->i", diff, inv, diff), diff.shape[1])


def background_from_scene(
    profiles: Mapping[str, TrackProfile], params: DetectorParams | None = None
) -> dict[str, TrackProfile]:
    """A background profile per track estimated from the profiles themselves.

    Start from the yard's typical ballast (the median over all tracks), or from a track's own
    median when few of its samples look like that (another bed); then repeatedly take the
    running median of the samples that look like the background under a pooled robust noise
    model. A track covered mostly by one uniform train that differs from the yard's ballast is
    taken for another bed: without a reference nothing can tell the two apart.
    """
    p = params or DetectorParams()
    have = {k: pr for k, pr in profiles.items() if pr.valid.sum() >= 3}
    if not have:
        return {k: pr for k, pr in profiles.items()}
    keys = list(have)
    bounds = [0, *np.cumsum([len(have[k].valid) for k in keys]).tolist()]
    starts = np.asarray(bounds[:-1])
    vals = np.concatenate([have[k].values for k in keys]).astype(np.float64)
    valid = np.concatenate([have[k].valid for k in keys])
    allv = vals[valid]
    level = np.median(allv, axis=0)
    floor = p.noise_floor_rel * np.maximum(np.abs(level), 1e-12)
    inv0 = np.linalg.inv(robust_covariance(allv - level, floor))
    # the yard's typical ballast, unless a track mostly is something else (another bed)
    typical = valid & (_z(np.nan_to_num(vals - level), inv0) < p.selfref_inlier_z)
    like = np.add.reduceat(typical, starts) / np.add.reduceat(valid, starts)
    background = np.broadcast_to(level, vals.shape).copy()
    for i in np.flatnonzero(like < p.selfref_min_typical):
        sl = slice(bounds[i], bounds[i + 1])
        background[sl] = np.median(vals[sl][valid[sl]], axis=0)
    inliers = valid.copy()
    # the window in samples; tracks of (nearly) one step share it
    window = max(round(p.selfref_window_m / float(np.median([have[k].step_m for k in keys]))), 3)
    for _ in range(3):
        # noise from the samples currently taken for ballast (cars would inflate it)
        res = vals[inliers] - background[inliers]
        inv = np.linalg.inv(robust_covariance(res - np.median(res, axis=0), floor))
        keep = valid & (_z(np.nan_to_num(vals - background), inv) < p.selfref_inlier_z)
        enough = np.repeat(np.add.reduceat(keep, starts) >= 3, np.diff(bounds))
        if not enough.any():
            continue
        inliers = np.where(enough, keep, inliers)
        medians = _running_medians(vals, keep, bounds, window)
        background[enough] = medians[enough]
    backgrounds = {k: background[bounds[i] : bounds[i + 1]] for i, k in enumerate(keys)}
    out: dict[str, TrackProfile] = {}
    for k, pr in profiles.items():
        if k not in backgrounds:
            out[k] = TrackProfile(k, pr.step_m, pr.values, np.zeros_like(pr.valid), pr.positions,
                                  pr.covered_mask)
            continue
        values = backgrounds[k].astype(np.float32)
        ok = pr.covered_mask & ~np.isnan(values[:, 0])
        out[k] = TrackProfile(k, pr.step_m, values, ok, pr.positions, pr.covered_mask)
    return out
