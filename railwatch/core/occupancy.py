"""Which stretches of each track are covered by rolling stock.

Score: the smoothed spectral difference to the background, as a Mahalanobis distance under a
robust noise covariance pooled over all tracks (most of a yard is empty ballast most of the
time), turned into a z-score. Segments: hysteresis, closing of coupler-sized gaps, ends moved
to the half-contrast point, short ones dropped. What neighbouring tracks explain away is
decided in `neighbours.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core.robust import chi_to_z, mahalanobis2, median, quantile, robust_covariance
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackScore:
    """Working arrays of one track: usable samples, smoothed difference, z-score."""

    track_id: str
    step_m: float
    usable: BoolArray
    diff: Floats  # (S, B), 0 where not usable
    z: Floats  # (S,), 0 where not usable
    positions: Floats  # (S, 2) col/row, may be empty
    background: Floats  # (S, B) background spectra, 0 where not usable

    def relative_change(self) -> tuple[Floats, BoolArray]:
        """(diff / background per band, 0 where undefined; where it is defined: usable and a
        positive background in every band): a shadow or a veil scales every band alike."""
        ok = self.usable & np.all(self.background > 0, axis=1)
        frac = np.zeros_like(self.diff)
        frac[ok] = self.diff[ok] / self.background[ok]
        return frac, ok


def even_change(frac: Floats, max_ratio: float) -> BoolArray:
    """Rows of `frac` (S, B) (`TrackScore.relative_change`) of one sign in every band with
    sizes within `max_ratio` of each other: every band scaled alike, as by a shadow or a veil."""
    size = np.abs(frac)
    same_sign = np.all(frac > 0, axis=1) | np.all(frac < 0, axis=1)
    return np.asarray(
        same_sign & (size.max(axis=1) <= max_ratio * np.maximum(size.min(axis=1), 1e-6)),
        dtype=bool,
    )


def smoothing_width(step_m: float, params: DetectorParams) -> int:
    """Samples in the along-track boxcar (`smooth_m`) at this sample spacing."""
    return max(round(params.smooth_m / step_m), 1)


def smooth_along(diff: Floats, usable: BoolArray, width: int) -> Floats:
    """Boxcar along the track that never mixes in unusable samples (normalised convolution)."""
    if width <= 1:
        return diff
    w = usable.astype(np.float64)
    num = ndimage.uniform_filter1d(diff * w[:, None], width, axis=0, mode="constant")
    den = ndimage.uniform_filter1d(w, width, mode="constant")
    out = np.zeros_like(diff)
    ok = usable & (den > 0)
    out[ok] = num[ok] / den[ok, None]
    return out


def _no_change_level(d: Floats, scale: Floats, keep: float, iterations: int = 4) -> Floats:
    """The common offset of the samples that did not change: the median of the `keep` share
    nearest it (cars may cover most of a yard, so the plain median can be a car)."""
    if d.shape[0] > 4096:
        d = d[:: int(np.ceil(d.shape[0] / 4096))]
    offset = np.zeros(d.shape[1])
    for _ in range(iterations):
        norm = np.sum(((d - offset) / scale) ** 2, axis=1)
        near = norm <= quantile(norm, keep)
        offset = median(d[near], axis=0)
    return offset


def _lagged_differences(d: Floats, usable: BoolArray, lag: int) -> Floats:
    """(d[i + lag] - d[i]) / √2 over usable pairs."""
    if d.shape[0] <= lag:
        return np.zeros((0, d.shape[1]))
    both = usable[lag:] & usable[:-lag]
    out: Floats = (d[lag:][both] - d[:-lag][both]) / np.sqrt(2.0)
    return out


def floored_covariance(cov: Floats, local: Floats, share: float) -> Floats:
    """`cov` with its variance in every direction at least `share` of `local`'s: the
    generalised eigenvalues of (cov, local) raised to `share` where below it."""
    chol = np.linalg.cholesky(local)
    a = np.linalg.solve(chol, np.linalg.solve(chol, cov).T)  # L⁻¹ cov L⁻ᵀ
    vals, vecs = np.linalg.eigh(0.5 * (a + a.T))
    raised = (vecs * np.maximum(vals, share)) @ vecs.T
    return np.asarray(chol @ raised @ chol.T, dtype=np.float64)


def score_tracks(
    profiles: Mapping[str, TrackProfile],
    background: Mapping[str, TrackProfile],
    params: DetectorParams,
) -> tuple[dict[str, TrackScore], Floats]:
    """Per-track scores and the inverse noise covariance they were computed with.

    All tracks are scored at once, laid end to end with unusable rows between them (the
    smoothing never crosses them)."""
    keys = [
        k for k, prof in profiles.items()
        if k in background and background[k].values.shape == prof.values.shape
    ]
    bands = next(iter(profiles.values())).values.shape[1] if profiles else 1
    if not keys:
        floor = params.noise_floor_rel * np.ones(bands)
        return {}, np.asarray(np.linalg.inv(np.diag(floor**2)), dtype=np.float64)
    widths = [smoothing_width(profiles[k].step_m, params) for k in keys]
    gap = max(widths)
    lengths = [len(profiles[k].valid) for k in keys]
    starts = np.cumsum([0, *(n + gap for n in lengths[:-1])])

    def laid(get: Callable[[str], npt.NDArray[Any]], fill: Any) -> npt.NDArray[Any]:
        first = get(keys[0])
        pad = np.full((gap, *first.shape[1:]), fill, dtype=first.dtype)
        return np.concatenate([x for k in keys for x in (get(k), pad)])

    values = laid(lambda k: profiles[k].values, 0).astype(np.float64)
    bg_values = laid(lambda k: background[k].values, 0).astype(np.float64)
    bg_valid = laid(lambda k: background[k].valid, False)
    usable = laid(lambda k: profiles[k].valid, False) & bg_valid
    with np.errstate(invalid="ignore"):
        diff = np.where(usable[:, None], values - bg_values, 0.0)
    level = median(np.abs(bg_values[bg_valid]), axis=0) if bg_valid.any() else np.ones(bands)
    floor = params.noise_floor_rel * np.maximum(level, 1e-12)
    if params.level_correction and usable.any():
        # a residual haze/calibration difference shifts every sample alike
        diff[usable] -= _no_change_level(diff[usable], floor, params.noise_keep_quantile)
    if len(set(widths)) == 1:
        smoothed = smooth_along(diff, usable, widths[0])
    else:
        smoothed = np.zeros_like(diff)
        for s0, n, width in zip(starts, lengths, widths, strict=True):
            sl = slice(s0, s0 + n)
            smoothed[sl] = smooth_along(diff[sl], usable[sl], width)
    rows = smoothed[usable]
    # the noise of "no change": by default the spread of the bulk about its own centre. Where
    # cars cover most of a yard the bulk's spread is theirs; about zero (the rows nearest it) it
    # is the ballast's. At <= 1 m that is the better measure (0.5 m bench, dense 2 -> 3/10); at
    # 3 m it cost a hazy scene false cars (its haze varies across the yard, so its empty tracks
    # lie off zero: test_detect_cli) and clear 10 -> 9/10 for dense 5 -> 6/10 (bias -26 -> -1)
    anchor = np.zeros(bands) if params.noise_about_no_change else None
    cov = robust_covariance(rows, floor, anchor=anchor) if rows.shape[0] else np.diag(floor**2)
    z_cov = None
    lagged = [] if params.noise_max_ratio is None else [
        r for k, s0, n in zip(keys, starts, lengths, strict=True)
        if (r := _lagged_differences(
            smoothed[s0 : s0 + n], usable[s0 : s0 + n],
            max(round(params.noise_lag_m / profiles[k].step_m), 1))).size]
    if lagged and params.noise_max_ratio is not None:
        # the bulk of a yard's samples is empty ballast unless the yard is loaded over most of
        # its length: then the bulk is cars. Differences of samples a few metres apart are noise
        # either way (most pairs lie within one stretch) but miss slow changes along the track;
        # the bulk may exceed them by that much and no more (no bound: not even computed)
        local = robust_covariance(np.concatenate(lagged), floor)
        ratio = float(np.trace(np.linalg.solve(local, cov))) / cov.shape[0]
        if ratio > params.noise_max_ratio:
            cov = cov * (params.noise_max_ratio / ratio)
            sd = np.sqrt(np.diag(cov))
            cov = cov / np.outer(sd, sd) * np.outer(np.maximum(sd, floor), np.maximum(sd, floor))
        if params.noise_local_floor > 0:
            # the bulk's shape is the cars' where they cover most of a yard: one direction
            # (brightness) wide, others far narrower than the ballast's own noise, in which an
            # empty track then "changes" everywhere (3 m bench, dense #1: an empty main line's
            # 13 DN of noise read as z 5-20). Evidence of a change is judged against at least
            # a share of the local noise in every direction; the returned metric, which weighs
            # explanations (a dark train is no shadow when its colour differs), keeps the
            # bulk's shape (floored there too: dense 6 -> 0/10, every dark train explained)
            z_cov = floored_covariance(cov, local, params.noise_local_floor)
    inv = np.linalg.inv(cov)
    z = chi_to_z(mahalanobis2(smoothed, np.linalg.inv(z_cov) if z_cov is not None else inv), bands)
    z[~usable] = 0.0
    level_all = np.where(usable[:, None], bg_values, 0.0)
    out: dict[str, TrackScore] = {}
    for k, s0, n in zip(keys, starts, lengths, strict=True):
        sl = slice(s0, s0 + n)
        prof = profiles[k]
        out[k] = TrackScore(k, prof.step_m, usable[sl], smoothed[sl], z[sl], prof.positions,
                            level_all[sl])
    return out, np.asarray(inv, dtype=np.float64)


def runs(mask: BoolArray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of a 1-D mask (stop exclusive)."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _projection(diff: Floats, inv: Floats, vec: Floats) -> Floats:
    """How much of `vec` each row of diff holds (1 = all of it), in the noise metric."""
    norm = float(vec @ inv @ vec)
    if norm <= 0:
        return np.zeros(diff.shape[0])
    return np.asarray(diff @ inv @ vec / norm, dtype=np.float64)


def _refine_end(
    proj: Floats, usable: BoolArray, edge: int, inside: int, step: int, limit: int
) -> float:
    """Sub-sample position (in samples, edges at k, k+1, ...) of the half-contrast crossing near
    segment end `edge` (first sample of the segment going from `inside` outwards by `step`)."""
    n = len(proj)
    # walk outwards while the sample is still more than half covered
    k = edge
    moved = 0
    while 0 <= k + step < n and usable[k + step] and proj[k + step] >= 0.5 and moved < limit:
        k += step
        moved += 1
    # or inwards while the end sample is less than half covered
    while k != inside and proj[k] < 0.5 and moved > -limit:
        k -= step
        moved -= 1
    outer = k + step
    if not (0 <= outer < n) or not usable[outer]:
        # the segment runs into a masked stretch or the track end: stop at the sample boundary
        return float(k + (1 if step > 0 else 0))
    a, b = proj[k], proj[outer]
    frac = 0.5 if a == b else float(np.clip((a - 0.5) / (a - b), 0.0, 1.0))
    # crossing lies `frac` of a step beyond the centre of sample k
    centre = k + 0.5 + step * frac
    return float(centre)


def segments(
    score: TrackScore, suppressed: BoolArray, inv: Floats, car_pitch_m: float,
    gsd_m: float, params: DetectorParams,
) -> list[tuple[float, float]]:
    """Occupied (start_m, end_m) stretches of one track."""
    p = params
    step = score.step_m
    ok = score.usable & ~suppressed
    low = ok & (score.z >= p.low_z)
    high = ok & (score.z >= p.high_z)
    labels, _ = ndimage.label(low)
    keep_labels = np.unique(labels[high])
    occupied = np.isin(labels, keep_labels[keep_labels > 0])
    # close short gaps inside a train, but never across masked samples
    gap = round(p.gap_close_m / step)
    for a, b in runs(~occupied):
        if a > 0 and b < len(occupied) and b - a <= gap and score.usable[a:b].all():
            occupied[a:b] = True
    out: list[tuple[float, float]] = []
    limit = max(round(p.edge_refine_max_px * gsd_m / step), 0)
    span = max(round(min(10.0, car_pitch_m) / step), 1)
    for a, b in runs(occupied):
        length = b - a
        head = score.diff[a : a + min(span, length)]
        tail = score.diff[max(b - span, a) : b]
        start = _refine_end(
            _projection(score.diff, inv, median(head, axis=0)), ok, a, b - 1, -1, limit
        )
        end = _refine_end(_projection(score.diff, inv, median(tail, axis=0)), ok, b - 1, a, 1, limit)
        if end > start:
            out.append((start * step, end * step))
    # refinement can make neighbouring segments touch: merge, then drop the short ones
    merged: list[tuple[float, float]] = []
    for s, e in sorted(out):
        if merged and s - merged[-1][1] <= 0.0:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    shortest = p.min_segment_car_fraction * car_pitch_m
    kept = [(s, e) for s, e in merged if e - s >= shortest]
    return [seg for i, seg in enumerate(kept)
            if _seen_clearly(score, seg, kept[i - 1 : i] + kept[i + 1 : i + 2], car_pitch_m, p)]


def _seen_clearly(score: TrackScore, seg: tuple[float, float], beside: list[tuple[float, float]],
                  car_pitch_m: float, p: DetectorParams) -> bool:
    """A lone stretch about one car long stands on its peak alone: it must stand out by
    `short_min_z` somewhere. A longer one is backed by its length, one within a car pitch of
    another by the train it belongs to."""
    start, end = seg
    if end - start >= p.short_max_cars * car_pitch_m:
        return True
    if any(s - end <= car_pitch_m and start - e <= car_pitch_m for s, e in beside):
        return True
    a = max(int(start / score.step_m), 0)
    b = min(int(np.ceil(end / score.step_m)), len(score.z))
    return bool(b > a and np.max(score.z[a:b]) >= p.short_min_z)
