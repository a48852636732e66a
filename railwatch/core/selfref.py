"""A background from the scene alone, for AOIs without a reference or history yet.

Along a track the ballast is the dominant material: the background at each position is the
running median of the ballast-like samples of that track (those close to the yard's typical
spectrum, then close to the first local estimate), so trains drop out of their own background
and stretches under a long train are bridged from the ballast on either side.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core.robust import chi_to_z, mahalanobis2, median, robust_covariance
from railwatch.core.types import DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]


def _alternate_inf(values: Floats, keep: npt.NDArray[np.bool_]) -> Floats:
    """`values` (n, B) with dropped rows set to +inf and -inf in turn (see robust._kept_median)."""
    side = np.where(np.cumsum(~keep) % 2 == 0, np.inf, -np.inf)
    return np.where(keep[:, None], values, side[:, None])


def _running_medians(
    values: Floats, keep: npt.NDArray[np.bool_], bounds: Sequence[int], window: int
) -> Floats:
    """Per track (rows bounds[i]:bounds[i + 1] of `values` (N, B)): the running median of the
    kept rows within ±window/2, linearly interpolated over positions whose window held no kept
    row (NaN where a whole track has none).

    All tracks at once, laid end to end with half a window of dropped rows between them;
    dropped rows are +inf and -inf in turn (see robust._kept_median), so scipy's 1-D median filter
    (a running heap, not a sort per position) gives the median of the kept rows (of an even
    number of them: one of the two middle ones).
    """
    n, bands = values.shape
    half = max(window // 2, 1)
    pairs = list(itertools.pairwise(bounds))
    starts = half + np.concatenate([[0], np.cumsum([b - a + half for a, b in pairs])[:-1]])
    where = np.concatenate([np.arange(b - a) + s for (a, b), s in zip(pairs, starts, strict=True)])
    length = int(starts[-1] + pairs[-1][1] - pairs[-1][0] + half)
    ext = np.zeros((length, bands))
    kept = np.zeros(length, dtype=bool)
    ext[where] = np.nan_to_num(values)
    kept[where] = keep
    ext = _alternate_inf(ext, kept)
    out = np.empty((n, bands))
    for b in range(bands):
        column = np.ascontiguousarray(ext[:, b])
        out[:, b] = ndimage.median_filter(column, 2 * half + 1, mode="nearest")[where]
    have = np.asarray(np.isfinite(out).all(axis=1), dtype=bool)
    if have.all():
        return out
    idx = np.arange(n, dtype=np.float64)
    for a, b in pairs:
        ok = have[a:b]
        if not ok.any():
            out[a:b] = np.nan
        elif not ok.all():
            for band in range(bands):
                out[a:b, band] = np.interp(idx[a:b], idx[a:b][ok], out[a:b, band][ok])
    return out


def _z(diff: Floats, inv: npt.NDArray[np.floating[Any]]) -> Floats:
    return chi_to_z(mahalanobis2(diff, inv), diff.shape[1])


def _typical_shares(
    vals: Floats, valid: npt.NDArray[np.bool_], fit: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.intp], p: DetectorParams,
) -> tuple[Floats, Floats, Floats]:
    """(the yard's typical spectrum, the noise floor, per track the share of its `fit`
    samples that look like it) of tracks laid end to end from `starts`."""
    allv = vals[valid]
    level = median(allv, axis=0)
    floor = p.noise_floor_rel * np.maximum(np.abs(level), 1e-12)
    inv0 = np.linalg.inv(robust_covariance(allv - level, floor))
    typical = fit & (_z(np.nan_to_num(vals - level), inv0) < p.selfref_inlier_z)
    like = np.add.reduceat(typical, starts) / np.maximum(np.add.reduceat(fit, starts), 1)
    return level, floor, np.asarray(like, dtype=np.float64)


def _laid_end_to_end(profiles: Mapping[str, TrackProfile]
                     ) -> tuple[list[str], list[int], Floats, npt.NDArray[np.bool_]] | None:
    """(track ids, row bounds, values, valid) of the tracks with at least 3 valid samples, laid
    end to end; None when there is none."""
    keys = [k for k, pr in profiles.items() if pr.valid.sum() >= 3]
    if not keys:
        return None
    bounds = [0, *np.cumsum([len(profiles[k].valid) for k in keys]).tolist()]
    vals = np.concatenate([profiles[k].values for k in keys]).astype(np.float64)
    return keys, bounds, vals, np.concatenate([profiles[k].valid for k in keys])


def other_beds(profiles: Mapping[str, TrackProfile], params: DetectorParams) -> set[str]:
    """The tracks mostly unlike the yard's typical ballast (another bed, when `profiles` is
    an empty yard's)."""
    laid = _laid_end_to_end(profiles)
    if laid is None:
        return set()
    keys, bounds, vals, valid = laid
    _, _, like = _typical_shares(vals, valid, valid, np.asarray(bounds[:-1]), params)
    return {k for k, share in zip(keys, like, strict=True) if share < params.selfref_min_typical}


def background_from_scene(
    profiles: Mapping[str, TrackProfile], params: DetectorParams | None = None,
    exclude: Mapping[str, npt.NDArray[np.bool_]] | None = None,
    beds: Collection[str] | None = None,
) -> dict[str, TrackProfile]:
    """A background profile per track estimated from the profiles themselves.

    Start from the yard's typical ballast (the median over all tracks), or from a track's own
    median when few of its samples look like that (another bed); then repeatedly take the
    running median of the samples that look like the background under a pooled robust noise
    model. A track covered mostly by one uniform train that differs from the yard's ballast is
    taken for another bed: without a reference nothing can tell the two apart. `exclude`
    marks samples known not to be ballast (a train found against a reference): they are bridged
    from the ballast around them like any car. `beds`: the tracks known to lie on another bed
    (from a reference); None: any track mostly unlike the yard's ballast.
    """
    p = params or DetectorParams()
    laid = _laid_end_to_end(profiles)
    if laid is None:
        return {k: pr for k, pr in profiles.items()}
    keys, bounds, vals, valid = laid
    have = {k: profiles[k] for k in keys}
    starts = np.asarray(bounds[:-1])
    # samples that may be ballast (`exclude`: known not to be; they still get a background)
    fit = valid if exclude is None else valid & ~np.concatenate(
        [exclude[k] if k in exclude else np.zeros(len(have[k].valid), bool) for k in keys])
    level, floor, like = _typical_shares(vals, valid, fit, starts, p)
    background = np.broadcast_to(level, vals.shape).copy()
    fits = np.add.reduceat(fit, starts)
    other = like < p.selfref_min_typical
    if beds is not None:
        other &= np.isin(keys, list(beds))
    for i in np.flatnonzero(other & (fits >= 3)):
        sl = slice(bounds[i], bounds[i + 1])
        background[sl] = median(vals[sl][fit[sl]], axis=0)
    inliers = fit.copy()
    # the window in samples; tracks of (nearly) one step share it
    window = max(round(p.selfref_window_m / float(np.median([have[k].step_m for k in keys]))), 3)
    for _ in range(3):
        # noise from the samples currently taken for ballast (cars would inflate it)
        res = vals[inliers] - background[inliers]
        inv = np.linalg.inv(robust_covariance(res - median(res, axis=0), floor))
        keep = fit & (_z(np.nan_to_num(vals - background), inv) < p.selfref_inlier_z)
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
