"""Per-band linear radiometric normalisation of an image onto a reference.

Dates differ by sun, haze and sensor calibration; to first order that is a gain and an offset per
band. Cars, clouds and shadows change too, so the fit uses only pixels that behave alike in both
(pseudo-invariant features), found by iteratively trimming the regression residuals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.robust import trimmed_linear_fit
from railwatch.core.types import BoolArray, DetectorParams


def fit_radiometry(
    image: npt.NDArray[Any],
    valid: BoolArray,
    reference: npt.NDArray[Any],
    reference_valid: BoolArray,
    params: DetectorParams | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band (gains, offsets) with reference ≈ gain * image + offset on common valid pixels."""
    p = params or DetectorParams()
    both = valid & reference_valid
    bands = image.shape[0]
    if both.sum() < 10:
        return (1.0,) * bands, (0.0,) * bands
    idx = np.flatnonzero(both.ravel())
    if idx.size > p.radiometric_max_pixels:
        # a fixed stride, not a random draw: the same inputs always give the same fit
        idx = idx[:: int(np.ceil(idx.size / p.radiometric_max_pixels))]
    x_all = image.reshape(bands, -1)[:, idx].astype(np.float64)
    y_all = reference.reshape(bands, -1)[:, idx].astype(np.float64)
    # a pixel must be invariant in every band: trim jointly, band by band residuals
    inliers = np.ones(idx.size, dtype=bool)
    gains, offsets = [1.0] * bands, [0.0] * bands
    for b in range(bands):
        g, o, keep = trimmed_linear_fit(
            x_all[b], y_all[b], p.radiometric_iterations, p.radiometric_trim_sigma
        )
        gains[b], offsets[b] = g, o
        inliers &= keep
    if inliers.sum() >= 10:
        for b in range(bands):
            g, o, _ = trimmed_linear_fit(
                x_all[b, inliers], y_all[b, inliers], p.radiometric_iterations,
                p.radiometric_trim_sigma,
            )
            gains[b], offsets[b] = g, o
    return tuple(gains), tuple(offsets)


def apply_radiometry(
    image: npt.NDArray[Any], gains: tuple[float, ...], offsets: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """gain * image + offset per band, float32."""
    g = np.asarray(gains, dtype=np.float32)[:, None, None]
    o = np.asarray(offsets, dtype=np.float32)[:, None, None]
    return np.asarray(image, dtype=np.float32) * g + o
