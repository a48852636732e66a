"""A background from the scene alone, for AOIs without a reference or history yet.

Along a track the ballast is the dominant material: the background at each position is the
running median of the ballast-like samples of that track (those close to the yard's typical
spectrum, then close to the first local estimate), so trains drop out of their own background
and stretches under a long train are bridged from the ballast on either side.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from railwatch.core.robust import chi_to_z, robust_covariance
from railwatch.core.types import DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]


def _running_median(values: Floats, keep: npt.NDArray[np.bool_], window: int) -> Floats:
    """Per-position median of the kept rows within ±window/2, then linear interpolation over
    positions whose window held no kept row (NaN where the whole track has none)."""
    n, bands = values.shape
    half = max(window // 2, 1)
    data = np.where(keep[:, None], values, np.nan)
    padded = np.pad(data, ((half, half), (0, 0)), constant_values=np.nan)
    windows = sliding_window_view(padded, 2 * half + 1, axis=0)  # (n, bands, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(windows, axis=2)
    have = ~np.isnan(med[:, 0])
    if have.any() and not have.all():
        idx = np.arange(n)
        for b in range(bands):
            med[:, b] = np.interp(idx, idx[have], med[have, b])
    return np.asarray(med, dtype=np.float64)


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
    bands = next(iter(have.values())).values.shape[1]
    allv = np.concatenate([pr.values[pr.valid] for pr in have.values()]).astype(np.float64)
    level = np.median(allv, axis=0)
    floor = p.noise_floor_rel * np.maximum(np.abs(level), 1e-12)
    inv0 = np.linalg.inv(robust_covariance(allv - level, floor))
    backgrounds: dict[str, Floats] = {}
    for k, pr in have.items():
        # the yard's typical ballast, unless this track mostly is something else (another bed)
        diff = np.nan_to_num(pr.values - level)
        z = chi_to_z(np.einsum("ij,jk,ik->i", diff, inv0, diff), bands)
        like = float((pr.valid & (z < p.selfref_inlier_z)).sum()) / float(pr.valid.sum())
        start = level if like >= p.selfref_min_typical else np.median(pr.values[pr.valid], axis=0)
        backgrounds[k] = np.broadcast_to(start, pr.values.shape).astype(np.float64)
    inliers = {k: pr.valid for k, pr in have.items()}
    for _ in range(3):
        # noise from the samples currently taken for ballast (cars would inflate it)
        res = np.concatenate(
            [(pr.values[inliers[k]] - backgrounds[k][inliers[k]]) for k, pr in have.items()]
        )
        cov = robust_covariance(res - np.median(res, axis=0), floor)
        inv = np.linalg.inv(cov)
        for k, pr in have.items():
            vals = pr.values.astype(np.float64)
            diff = np.nan_to_num(vals - backgrounds[k])
            z = chi_to_z(np.einsum("ij,jk,ik->i", diff, inv, diff), bands)
            keep = pr.valid & (z < p.selfref_inlier_z)
            if keep.sum() >= 3:
                inliers[k] = keep
                window = max(round(p.selfref_window_m / pr.step_m), 3)
                backgrounds[k] = _running_median(vals, keep, window)
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
