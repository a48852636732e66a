"""Per-band linear radiometric normalisation of an image onto a reference.

Dates differ by sun, haze and sensor calibration; to first order that is a gain and an offset per
band. Cars, clouds and shadows change too, so the fit uses only pixels that behave alike in both
(pseudo-invariant features), found by iteratively trimming the regression residuals. Two
unknowns per band need a few thousand pixels, not the whole scene: the fit runs on a
fixed-stride grid (the same inputs always give the same fit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.robust import trimmed_linear_fits
from railwatch.core.sampling import shifted_pixels
from railwatch.core.types import BoolArray, DetectorParams


def fit_radiometry(
    image: npt.NDArray[Any],
    valid: BoolArray,
    reference: npt.NDArray[Any],
    reference_valid: BoolArray,
    params: DetectorParams | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band (gains, offsets) with reference ≈ gain * image + offset on common valid pixels.

    `shift` (dx, dy) is the shift that puts the image onto the reference (Alignment.shift_px):
    the image is taken as moved by it.
    """
    p = params or DetectorParams()
    bands, h, w = image.shape
    stride = max(int(np.ceil(np.sqrt(h * w / max(p.radiometric_max_pixels, 1)))), 1)
    rr, cc = np.mgrid[stride // 2 : h : stride, stride // 2 : w : stride]
    rows, cols = rr.ravel(), cc.ravel()
    y_all = np.asarray(reference[:, rows, cols], dtype=np.float64)
    both = np.asarray(reference_valid, dtype=bool)[rows, cols] & np.isfinite(y_all).all(axis=0)
    # the image's pixels moved as `shift_image` would (a spline, not a blurring bilinear mix,
    # which would lower the image's contrast and bias the gains)
    x_t, ok = shifted_pixels(image, valid, rows, cols, shift, half_taps=2)
    x_all = x_t.T
    both &= ok
    if both.sum() < 10:
        return (1.0,) * bands, (0.0,) * bands
    x_all, y_all = x_all[:, both], y_all[:, both]
    # a pixel must be invariant in every band: trim band by band, then refit on the pixels
    # every band kept
    gains, offsets, keep = trimmed_linear_fits(
        x_all, y_all, p.radiometric_iterations, p.radiometric_trim_sigma
    )
    inliers = keep.all(axis=0)
    if inliers.sum() >= 10:
        gains, offsets, _ = trimmed_linear_fits(
            x_all[:, inliers], y_all[:, inliers], p.radiometric_iterations,
            p.radiometric_trim_sigma,
        )
    return tuple(float(g) for g in gains), tuple(float(o) for o in offsets)


def apply_radiometry(
    image: npt.NDArray[Any], gains: tuple[float, ...], offsets: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """gain * image + offset per band, float32."""
    g = np.asarray(gains, dtype=np.float32)[:, None, None]
    o = np.asarray(offsets, dtype=np.float32)[:, None, None]
    return np.asarray(image, dtype=np.float32) * g + o
