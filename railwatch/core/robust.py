"""Robust statistics shared by the core: things change between dates (cars, clouds, shadows),
so every scale, fit and covariance here ignores a minority of outliers."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from railwatch.core.jit import compiled

MAD_TO_SIGMA = 1.4826

Floats = npt.NDArray[np.float64]


def median(x: npt.NDArray[Any], axis: int | None = None, keepdims: bool = False) -> Any:
    """`np.median`, the same values to the bit, for float arrays several times faster on the
    short rows the core takes medians of: numpy partitions at three ranks at once (a slow path
    of its introselect); one partition at the lower middle rank and the minimum above it give
    the same two middle values."""
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.size == 0 or a.ndim == 0:
        return np.median(a, axis=axis, keepdims=keepdims)
    ndim = a.ndim
    along = -1 if axis is None else axis % ndim
    rows = a.ravel() if axis is None else np.moveaxis(a, along, -1)
    if not rows.flags.c_contiguous:
        rows = np.ascontiguousarray(rows)  # partitioning along strided memory is slow
    n = rows.shape[-1]
    rank = (n - 1) // 2
    part = np.partition(rows, rank, axis=-1)
    lower = part[..., rank]
    upper = lower if n % 2 else part[..., rank + 1 :].min(axis=-1)
    out = (lower + upper) / a.dtype.type(2)
    nan = np.isnan(rows).any(axis=-1)
    if np.any(nan):
        out = np.where(nan, np.nan, out).astype(a.dtype)
    if keepdims:
        out = np.reshape(out, (1,) * ndim) if axis is None else np.expand_dims(out, along)
    return out if np.ndim(out) else a.dtype.type(out)


def quantile(x: npt.NDArray[Any], q: float) -> float:
    """`np.quantile(x, q)` (linear interpolation) of a 1-D float64 array, the same value to the
    bit: one partition and the minimum above it, as `median`, instead of numpy's four ranks."""
    a = np.asarray(x)
    if a.ndim != 1 or a.dtype != np.float64 or a.size == 0 or not 0.0 <= q <= 1.0:
        return float(np.quantile(a, q))
    n = a.size
    virtual = (n - 1) * np.float64(q)
    rank = n - 1 if virtual >= n - 1 else int(np.floor(virtual))
    part = np.partition(a, rank)
    if np.isnan(part[-1]) or np.isnan(a).any():
        return float(np.quantile(a, q))
    lower = part[rank]
    upper = lower if rank == n - 1 else part[rank + 1 :].min()
    gamma = virtual - np.float64(rank)
    step = upper - lower
    value = upper - step * (1 - gamma) if gamma >= 0.5 else lower + step * gamma
    return float(value)


def _median(x: npt.NDArray[Any], axis: int | None, keepdims: bool = False) -> Any:
    """Median ignoring NaNs; the plain (partition-based) median when there are none."""
    if np.isnan(x).any():
        return np.nanmedian(x, axis=axis, keepdims=keepdims)
    return median(x, axis=axis, keepdims=keepdims)


def mad_sigma(x: npt.NDArray[Any], axis: int | None = None) -> Any:
    """Gaussian-consistent median absolute deviation (NaNs ignored)."""
    x = np.asarray(x, dtype=np.float64)
    med = _median(x, axis, keepdims=True)
    return MAD_TO_SIGMA * _median(np.abs(x - med), axis)


def trimmed_linear_fits(
    x: npt.NDArray[Any], y: npt.NDArray[Any], iterations: int = 6, trim_sigma: float = 2.5
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """Row by row (x, y of shape (B, N)): y ≈ gain * x + offset by least squares,
    iteratively dropping residuals farther than trim_sigma·MAD from their median. Starts from
    a quantile match (robust even when the first least-squares fit would be pulled by changed
    pixels; its offset may be off by more than the trim, hence the median).

    Returns (gains (B,), offsets (B,), inlier mask (B, N)).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    rows = x.shape[0]
    if x.shape[1] < 3:
        return np.ones(rows), np.zeros(rows), np.ones(x.shape, dtype=bool)
    qx = np.percentile(x, [25.0, 50.0, 75.0], axis=1)
    qy = np.percentile(y, [25.0, 50.0, 75.0], axis=1)
    spread = qx[2] - qx[0]
    gain = np.where(spread > 0, (qy[2] - qy[0]) / np.where(spread > 0, spread, 1.0), 1.0)
    offset = qy[1] - gain * qx[1]
    inliers = np.ones(x.shape, dtype=bool)
    _trim_and_fit(np.ascontiguousarray(x), np.ascontiguousarray(y), gain, offset, inliers,
                  iterations, trim_sigma)
    return gain, offset, inliers


@compiled
def _kept_median(values: Any, keep: Any, buffer: Any) -> float:
    """The median of one row's entries where `keep` is True, as if the dropped ones were -inf
    and +inf in turn along the row (so they sit in equal numbers, ±1, on either side, and the
    row's middle is the kept values' middle within half a rank): that middle (of an even
    row, the mean of its two) read from the kept values by rank; ±inf or NaN with nothing
    kept. `buffer`: scratch of the row's length."""
    n = values.size
    k = 0
    for i in range(n):
        if keep[i]:
            buffer[k] = values[i]
            k += 1
    below = (n - k + 1) // 2  # the dropped entries that are -inf (the first one is)
    lower = (n - 1) // 2 - below  # the middle's rank among the kept values
    upper = lower + (1 - n % 2)  # the second middle of an even row (the same one if odd)
    if 0 <= lower < k:
        part = np.partition(buffer[:k], lower)
        low = part[lower]
        high = low if upper == lower else (part[lower + 1:k].min() if upper < k else np.inf)
    else:
        low = -np.inf if lower < 0 else np.inf
        if upper == lower:
            high = low
        elif upper == 0 and k > 0:
            high = buffer[:k].min()
        else:
            high = -np.inf if upper < 0 else np.inf
    return float((low + high) / 2.0)


@compiled
def _trim_and_fit(x: Any, y: Any, gain: Any, offset: Any, inliers: Any, iterations: int,
                  trim_sigma: float) -> None:
    """The iterations of `trimmed_linear_fits`, compiled (in place on gain, offset, inliers):
    as numpy calls on 4 × 2048 pixels each iteration's two dozen small operations took ≈ 3 ms
    a fit, two fits a scene."""
    rows, n = x.shape
    resid = np.empty(n)
    dev = np.empty(n)
    buffer = np.empty(n)
    new = np.empty(x.shape, dtype=np.bool_)
    for it in range(iterations):
        for r in range(rows):
            for i in range(n):
                resid[i] = y[r, i] - (gain[r] * x[r, i] + offset[r])
            med = _kept_median(resid, inliers[r], buffer)
            for i in range(n):
                dev[i] = abs(resid[i] - med)
            scale = MAD_TO_SIGMA * _kept_median(dev, inliers[r], buffer)
            if not np.isfinite(scale) or scale <= 0:
                total = 0.0
                for i in range(n):
                    total += resid[i] if inliers[r, i] else 0.0
                mean = total / n
                spread = 0.0
                for i in range(n):
                    d = (resid[i] if inliers[r, i] else 0.0) - mean
                    spread += d * d
                sd = np.sqrt(spread / n)
                scale = sd if sd > 0 else 1e-12
            for i in range(n):
                new[r, i] = abs(resid[i] - med) <= trim_sigma * scale
        any_enough = False
        for r in range(rows):
            count = 0
            for i in range(n):
                count += new[r, i]
            if count >= 3:
                any_enough = True
            else:
                new[r] = inliers[r]
        if not any_enough:
            break
        changed = 0
        for r in range(rows):
            for i in range(n):
                changed += new[r, i] != inliers[r, i]
        settled = changed <= (rows * n) // 1000
        inliers[:] = new
        if settled and it > 0:
            break
        for r in range(rows):
            w = 0.0
            sx = sy = 0.0
            for i in range(n):
                if inliers[r, i]:
                    w += 1.0
                    sx += x[r, i]
                    sy += y[r, i]
            mx = sx / w
            my = sy / w
            var = cov = 0.0
            for i in range(n):
                if inliers[r, i]:
                    dx = x[r, i] - mx
                    var += dx * dx
                    cov += dx * (y[r, i] - my)
            if var <= 0:
                gain[r] = 1.0
                offset[r] = my - mx
            else:
                gain[r] = cov / var
                offset[r] = my - gain[r] * mx


@functools.lru_cache(maxsize=32)
def _mcd_consistency(keep_quantile: float, bands: int) -> float:
    """Variance of a chi2_B variable truncated at its `keep_quantile`, relative to untruncated.

    chi2(k)'s CDF is the regularised lower incomplete gamma P(k/2, x/2): scipy.special gives it
    without importing scipy.stats (≈ 2.5 s, once in every worker process)."""
    cut = 2.0 * float(special.gammaincinv(bands / 2.0, keep_quantile))  # chi2.ppf
    return keep_quantile / float(special.gammainc((bands + 2) / 2.0, cut / 2.0))  # chi2.cdf


def robust_covariance(
    d: npt.NDArray[Any], floor: npt.NDArray[Any], iterations: int = 4, keep_quantile: float = 0.5,
    max_rows: int = 2048, anchor: npt.NDArray[Any] | None = None,
) -> Floats:
    """Covariance of the bulk of the rows of `d` (N, B): start from a diagonal MAD estimate,
    then re-estimate on the rows with the smallest Mahalanobis distances and rescale so the
    kept fraction matches a Gaussian (a light-weight MCD). `floor` (B,) bounds each sigma below.
    At most `max_rows` rows are used (a fixed stride: neighbouring samples are alike anyway).
    `anchor` (B,) fixes the centre: the spread about a hypothesis (e.g. "no change") of the rows
    nearest it, not about the bulk's own centre. Rows with a NaN are left out.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.shape[0] > max_rows > 0:
        d = d[:: int(np.ceil(d.shape[0] / max_rows))]
    bands = d.shape[1]
    floor = np.asarray(floor, dtype=np.float64)
    if not np.isfinite(d).all():
        d = d[np.isfinite(d).all(axis=1)]  # a NaN row has no distance to rank
    t = np.ascontiguousarray(d.T)  # (B, N): every reduction below runs along contiguous rows
    center = median(t, axis=1) if anchor is None else np.asarray(anchor, dtype=np.float64)
    sig = np.maximum(np.asarray(mad_sigma(t, axis=1), dtype=np.float64), floor)
    cov = np.diag(sig**2)
    if t.shape[1] < 4 * bands:
        return cov
    consistency = _mcd_consistency(keep_quantile, bands)
    return np.asarray(_bulk_covariance(t, np.array(center, dtype=np.float64), cov, floor, iterations,
                                       keep_quantile, consistency, anchor is not None))


@compiled
def _bulk_covariance(t: Any, center: Any, cov: Any, floor: Any, iterations: int,
                     keep_quantile: float, consistency: float, anchored: bool) -> Any:
    """The MCD iterations of `robust_covariance` on finite (B, N) rows, compiled: per
    iteration numpy made a dozen (B, N) temporaries for a 4 × 4 result (0.7 ms a call, a dozen
    calls a scene)."""
    bands, n = t.shape
    m2 = np.empty(n)
    diff = np.empty(bands)
    kth = min(int(keep_quantile * (n - 1)), n - 1)
    for _ in range(iterations):
        inv = np.linalg.inv(cov)
        for j in range(n):
            for a in range(bands):
                diff[a] = t[a, j] - center[a]
            total = 0.0
            for a in range(bands):
                row = 0.0
                for b in range(bands):
                    row += inv[a, b] * diff[b]
                total += row * diff[a]
            m2[j] = total
        cut = np.partition(m2, kth)[kth]
        kept_rows = 0
        for j in range(n):
            if m2[j] <= cut:
                kept_rows += 1
        if kept_rows < 2 * bands:
            break
        if not anchored:
            center = np.zeros(bands)
            for j in range(n):
                if m2[j] <= cut:
                    for a in range(bands):
                        center[a] += t[a, j]
            center /= kept_rows
        scatter = np.zeros((bands, bands))
        for j in range(n):
            if m2[j] <= cut:
                for a in range(bands):
                    diff[a] = t[a, j] - center[a]
                for a in range(bands):
                    for b in range(bands):
                        scatter[a, b] += diff[a] * diff[b]
        cov = consistency * scatter / max(kept_rows - 1, 1)
        _floor_variances(cov, floor)
    return cov


@compiled
def _floor_variances(cov: Any, floor: Any) -> None:
    """Each variance raised to at least floor², the correlations kept (in place), plus a tiny
    ridge so the inverse exists."""
    bands = cov.shape[0]
    sd = np.sqrt(np.maximum(np.diag(cov).copy(), 1e-30))
    raised = np.maximum(sd, floor)
    ridge = 1e-12 * (np.max(raised) ** 2 + 1e-30)
    for a in range(bands):
        for b in range(bands):
            cov[a, b] = cov[a, b] / (sd[a] * sd[b]) * (raised[a] * raised[b])
        cov[a, a] += ridge


def mahalanobis2(d: npt.NDArray[Any], inv: npt.NDArray[Any]) -> Floats:
    """Row-wise d' inv d of d (N, B) (a matrix product: einsum's 3-operand path is slow)."""
    return np.asarray(np.sum((d @ inv) * d, axis=1), dtype=np.float64)


def chi_to_z(m2: npt.NDArray[Any], dof: int) -> Floats:
    """Wilson–Hilferty: a chi-square(dof) value as a standard-normal z, so thresholds in sigma
    units mean the same for 3- and 4-band imagery."""
    k = float(dof)
    m2 = np.maximum(np.asarray(m2, dtype=np.float64), 0.0)
    return np.asarray(
        ((m2 / k) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / np.sqrt(2.0 / (9.0 * k)),
        dtype=np.float64,
    )
