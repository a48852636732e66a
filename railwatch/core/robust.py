"""Robust statistics shared by the core: things change between dates (cars, clouds, shadows),
so every scale, fit and covariance here ignores a minority of outliers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

MAD_TO_SIGMA = 1.4826

Floats = npt.NDArray[np.float64]


def mad_sigma(x: npt.NDArray[Any], axis: int | None = None) -> Any:
    """Gaussian-consistent median absolute deviation (NaNs ignored)."""
    med = np.nanmedian(x, axis=axis, keepdims=True)
    out = MAD_TO_SIGMA * np.nanmedian(np.abs(x - med), axis=axis)
    return out


def trimmed_linear_fit(
    x: npt.NDArray[Any], y: npt.NDArray[Any], iterations: int = 6, trim_sigma: float = 2.5
) -> tuple[float, float, npt.NDArray[np.bool_]]:
    """y ≈ gain * x + offset by least squares, iteratively dropping residuals > trim_sigma·MAD.

    Starts from a quantile match (robust even when the first least-squares fit would be pulled
    by changed pixels). Returns (gain, offset, inlier mask).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 3:
        return 1.0, 0.0, np.ones(x.shape, dtype=bool)
    qx = np.percentile(x, [25.0, 50.0, 75.0])
    qy = np.percentile(y, [25.0, 50.0, 75.0])
    spread = qx[2] - qx[0]
    gain = float((qy[2] - qy[0]) / spread) if spread > 0 else 1.0
    offset = float(qy[1] - gain * qx[1])
    inliers = np.ones(x.shape, dtype=bool)
    for _ in range(iterations):
        resid = y - (gain * x + offset)
        scale = float(mad_sigma(resid[inliers]))
        if not np.isfinite(scale) or scale <= 0:
            scale = float(np.std(resid[inliers])) or 1e-12
        inliers = np.abs(resid) <= trim_sigma * scale
        if inliers.sum() < 3:
            break
        xi, yi = x[inliers], y[inliers]
        var = float(np.var(xi))
        if var <= 0:
            gain, offset = 1.0, float(np.mean(yi - xi))
            continue
        gain = float(np.mean((xi - xi.mean()) * (yi - yi.mean())) / var)
        offset = float(yi.mean() - gain * xi.mean())
    return gain, offset, inliers


def robust_covariance(
    d: npt.NDArray[Any], floor: npt.NDArray[Any], iterations: int = 4, keep_quantile: float = 0.5
) -> Floats:
    """Covariance of the bulk of the rows of `d` (N, B): start from a diagonal MAD estimate,
    then re-estimate on the rows with the smallest Mahalanobis distances and rescale so the
    kept fraction matches a Gaussian (a light-weight MCD). `floor` (B,) bounds each sigma below.
    """
    d = np.asarray(d, dtype=np.float64)
    bands = d.shape[1]
    floor = np.asarray(floor, dtype=np.float64)
    center = np.median(d, axis=0)
    sig = np.maximum(np.asarray(mad_sigma(d, axis=0), dtype=np.float64), floor)
    cov = np.diag(sig**2)
    if d.shape[0] < 4 * bands:
        return cov
    from scipy.stats import chi2

    cut = float(chi2.ppf(keep_quantile, bands))
    # variance of a chi2_B variable truncated at `cut`, relative to untruncated: consistency factor
    consistency = keep_quantile / float(chi2.cdf(cut, bands + 2))
    for _ in range(iterations):
        inv = np.linalg.inv(cov)
        diff = d - center
        m2 = np.einsum("ij,jk,ik->i", diff, inv, diff)
        keep = m2 <= np.quantile(m2, keep_quantile)
        if keep.sum() < 2 * bands:
            break
        center = d[keep].mean(axis=0)
        diff = d[keep] - center
        cov = consistency * (diff.T @ diff) / max(int(keep.sum()) - 1, 1)
        # floor the variances, keep the correlations
        sd = np.sqrt(np.maximum(np.diag(cov), 1e-30))
        corr = cov / np.outer(sd, sd)
        sd = np.maximum(sd, floor)
        cov = corr * np.outer(sd, sd) + np.eye(bands) * 1e-12 * float(np.max(sd) ** 2 + 1e-30)
    return np.asarray(cov, dtype=np.float64)


def chi_to_z(m2: npt.NDArray[Any], dof: int) -> Floats:
    """Wilson–Hilferty: a chi-square(dof) value as a standard-normal z, so thresholds in sigma
    units mean the same for 3- and 4-band imagery."""
    k = float(dof)
    m2 = np.maximum(np.asarray(m2, dtype=np.float64), 0.0)
    return np.asarray(
        ((m2 / k) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / np.sqrt(2.0 / (9.0 * k)),
        dtype=np.float64,
    )
