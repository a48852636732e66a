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
    """A background profile per track estimated from the profiles themselves."""
    p = params or DetectorParams()
    pooled = [pr.values[pr.valid].astype(np.float64) for pr in profiles.values() if pr.valid.any()]
    if not pooled:
        return {k: pr for k, pr in profiles.items()}
    allv = np.concatenate(pooled)
    bands = allv.shape[1]
    centre = np.median(allv, axis=0)
    floor = p.noise_floor_rel * np.maximum(np.abs(centre), 1e-12)
    cov = robust_covariance(allv - centre, floor)
    backgrounds: dict[str, Floats] = {
        k: np.broadcast_to(centre, pr.values.shape).copy() for k, pr in profiles.items()
    }
    for _ in range(2):
        inv = np.linalg.inv(cov)
        residuals = []
        for k, pr in profiles.items():
            vals = pr.values.astype(np.float64)
            diff = np.nan_to_num(vals - backgrounds[k])
            z = chi_to_z(np.einsum("ij,jk,ik->i", diff, inv, diff), bands)
            keep = pr.valid & (z < p.selfref_inlier_z)
            window = max(round(p.selfref_window_m / pr.step_m), 3)
            if keep.sum() >= 3:
                backgrounds[k] = _running_median(vals, keep, window)
            residuals.append((vals - backgrounds[k])[keep])
        res = np.concatenate(residuals) if residuals else np.zeros((0, bands))
        if res.shape[0] >= 4 * bands:
            cov = robust_covariance(res - np.median(res, axis=0), floor)
    out: dict[str, TrackProfile] = {}
    for k, pr in profiles.items():
        values = backgrounds[k].astype(np.float32)
        ok = pr.covered_mask & ~np.isnan(values[:, 0])
        out[k] = TrackProfile(k, pr.step_m, values, ok, pr.positions, pr.covered_mask)
    return out
