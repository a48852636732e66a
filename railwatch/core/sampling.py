"""Bilinear sampling of an image at scattered points, without touching the rest of the image.

Registration moves the sampling points, never the pixels: an aligned image sampled at p is the
image sampled at p - shift, and a per-band gain and offset commute with bilinear weights. So a
profile costs a few gathers per sample instead of resampling, filling and eroding the scene.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from railwatch.core.types import BoolArray

Floats = npt.NDArray[np.float64]


def erode(valid: BoolArray, iterations: int) -> BoolArray:
    """Binary erosion with the 4-neighbour cross (edges of the array count as valid), as
    scipy.ndimage.binary_erosion(valid, iterations=n, border_value=1) but by array shifts."""
    out = np.asarray(valid, dtype=bool)
    for _ in range(max(iterations, 0)):
        src = out
        out = src.copy()
        out[1:] &= src[:-1]
        out[:-1] &= src[1:]
        out[:, 1:] &= src[:, :-1]
        out[:, :-1] &= src[:, 1:]
    return out


SPLINE_HALF_TAPS = 3  # the cubic spline's interpolation kernel, truncated to 2 x this taps


@functools.lru_cache(maxsize=256)
def _spline_taps(t: float, half: int = SPLINE_HALF_TAPS) -> tuple[float, ...]:
    """Weights of taps -half+1 .. half at fractional offset t in [0, 1) of interpolation by
    cubic splines (scipy.ndimage's order 3: prefilter + B-spline), truncated and renormalised.
    The kernel decays by 0.27 a tap, so a few taps reproduce `shift_image` to ~0.1 %."""
    delta = np.zeros(4 * half + 9)
    centre = 2 * half + 4
    delta[centre] = 1.0
    # the response at output position `centre` to inputs at centre + k is the weight of tap k
    resp = ndimage.shift(delta, -t, order=3, mode="mirror")  # resp[i] = value at i + t
    weights = np.array([resp[centre - k] for k in range(-half + 1, half + 1)])
    return tuple(float(v) for v in weights / weights.sum())


def _gather(
    flat: npt.NDArray[Any], mask_flat: BoolArray | None, shape: tuple[int, int],
    rr: npt.NDArray[np.intp], cc: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """Pixel values (bands, N) at integer (rr, cc), clamped to the array, non-finite as 0, and
    whether each is inside, finite and valid."""
    h, w = shape
    idx = np.clip(rr, 0, h - 1) * w + np.clip(cc, 0, w - 1)
    vals = np.take(flat, idx, axis=1)
    finite = np.isfinite(vals).all(axis=0)
    ok = finite & (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    if mask_flat is not None:
        ok &= mask_flat[idx]
    return np.where(finite, vals, 0.0), ok


def _shifted_pixels(
    flat: npt.NDArray[Any], mask_flat: BoolArray | None, shape: tuple[int, int],
    rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], dx: float, dy: float,
    half_taps: int = SPLINE_HALF_TAPS,
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """Pixels (rows, cols) of the image moved by (dx, dy) (out[r, c] = image[r - dy, c - dx]):
    cubic spline where its whole source footprint is usable, bilinear elsewhere; usable
    where the bilinear footprint is (the shifted mask > 0.999, as `shift_image`)."""
    r0, c0 = int(np.floor(-dy)), int(np.floor(-dx))
    fr, fc = -dy - r0, -dx - c0
    wr, wc = _spline_taps(round(fr, 6), half_taps), _spline_taps(round(fc, 6), half_taps)
    taps = range(-half_taps + 1, half_taps + 1)
    lin_r, lin_c = (1.0 - fr, fr), (1.0 - fc, fc)
    cubic = np.zeros((flat.shape[0], rows.size))
    linear = np.zeros_like(cubic)
    good = np.zeros(rows.size)
    full = np.ones(rows.size, dtype=bool)
    for i, tr in enumerate(taps):
        for j, tc in enumerate(taps):
            vals, ok = _gather(flat, mask_flat, shape, rows + (r0 + tr), cols + (c0 + tc))
            cubic += vals * (wr[i] * wc[j])
            full &= ok
            if tr in (0, 1) and tc in (0, 1):
                weight = lin_r[tr] * lin_c[tc]
                linear += vals * weight
                good += ok * weight
    return np.where(full, cubic, linear), good > 0.999


def shifted_pixels(
    image: npt.NDArray[Any], valid: BoolArray | None, rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp], shift: tuple[float, float], half_taps: int = SPLINE_HALF_TAPS,
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """(values (N, bands), ok (N,)) of pixels (rows, cols) of `image` moved by `shift`."""
    bands, h, w = image.shape
    flat = image.reshape(bands, h * w)
    mask_flat = None if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    vals, ok = _shifted_pixels(flat, mask_flat, (h, w), rows, cols, shift[0], shift[1], half_taps)
    return vals.T, ok


def sample(
    image: npt.NDArray[Any], valid: BoolArray | None, rows: Floats, cols: Floats,
    shift: tuple[float, float] = (0.0, 0.0), half_taps: int = SPLINE_HALF_TAPS,
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """(values (N, bands), ok (N,)): bilinear samples at fractional (row, col) indices (pixel
    centres at integers, clamped at the edge like scipy's mode "nearest") of `image` (bands,
    H, W) moved by `shift` (dx, dy) as `shift_image` would move it.

    Only the pixels under the samples' footprints are moved (the cubic spline's kernel truncated
    to 2 x `half_taps` taps per axis), so aligned
    profiles cost a few gathers per sample instead of resampling the scene. `ok` is False where
    a pixel with non-zero weight is unusable: invalid, off the array or not finite.
    """
    bands, h, w = image.shape
    flat = image.reshape(bands, h * w)
    mask_flat = None if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    fr = rows - r0
    fc = cols - c0
    r0i = r0.astype(np.intp)
    c0i = c0.astype(np.intp)
    corners = [(r0i + dr, c0i + dc, (fr if dr else 1.0 - fr) * (fc if dc else 1.0 - fc))
               for dr in (0, 1) for dc in (0, 1)]
    acc = np.zeros((bands, rows.size), dtype=np.float64)
    good = np.zeros(rows.size, dtype=np.float64)
    dx, dy = shift
    if dx == 0.0 and dy == 0.0:
        for rr, cc, weight in corners:
            vals, ok = _gather(flat, mask_flat, (h, w), rr, cc)
            acc += vals * weight
            good += ok * weight
        return acc.T, good > 0.999
    # the distinct pixels under all footprints (samples overlap heavily), moved once each
    inside = [(rr >= 0) & (rr < h) & (cc >= 0) & (cc < w) for rr, cc, _ in corners]
    idx = [np.clip(rr, 0, h - 1) * w + np.clip(cc, 0, w - 1) for rr, cc, _ in corners]
    used = np.zeros(h * w, dtype=bool)
    for i in idx:
        used[i] = True
    pixels = np.flatnonzero(used)
    lookup = np.empty(h * w, dtype=np.int32)
    lookup[pixels] = np.arange(pixels.size, dtype=np.int32)
    moved, moved_ok = _shifted_pixels(
        flat, mask_flat, (h, w), pixels // w, pixels % w, dx, dy, half_taps
    )
    for (_, _, weight), i, ins in zip(corners, idx, inside, strict=True):
        at = lookup[i]
        acc += moved[:, at] * weight
        good += (moved_ok[at] & ins) * weight
    return acc.T, good > 0.999
