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


class _Taps:
    """Gathers of (bands, N) values at pixel offsets from (rows, cols), as `_gather` per offset
    but with the clamped flat indices and the inside test built per row and per column offset
    once (a footprint's taps share them), and the finite test skipped when the image has no
    non-finite value. The same values and flags as gathering each offset on its own."""

    def __init__(self, flat: npt.NDArray[Any], mask_flat: BoolArray | None,
                 shape: tuple[int, int], rows: npt.NDArray[np.intp],
                 cols: npt.NDArray[np.intp]) -> None:
        self.flat, self.mask_flat, self.shape = flat, mask_flat, shape
        self.rows, self.cols = rows, cols
        # a sum of squares is finite only if every value is (an overflow merely checks per gather)
        self.all_finite = all(np.isfinite(np.dot(band, band)) for band in flat)
        self._rows: dict[int, tuple[npt.NDArray[np.intp], BoolArray]] = {}
        self._cols: dict[int, tuple[npt.NDArray[np.intp], BoolArray]] = {}

    def _row(self, dr: int) -> tuple[npt.NDArray[np.intp], BoolArray]:
        if dr not in self._rows:
            h, w = self.shape
            rr = self.rows + dr
            self._rows[dr] = (np.clip(rr, 0, h - 1) * w, (rr >= 0) & (rr < h))
        return self._rows[dr]

    def _col(self, dc: int) -> tuple[npt.NDArray[np.intp], BoolArray]:
        if dc not in self._cols:
            cc = self.cols + dc
            self._cols[dc] = (np.clip(cc, 0, self.shape[1] - 1), (cc >= 0) & (cc < self.shape[1]))
        return self._cols[dc]

    def at(self, dr: int, dc: int) -> tuple[npt.NDArray[np.float64], BoolArray]:
        """Pixel values at (rows + dr, cols + dc), clamped to the array, non-finite as 0, and
        whether each is inside, finite and valid."""
        (row_index, row_in), (col_index, col_in) = self._row(dr), self._col(dc)
        idx = row_index + col_index
        vals = np.take(self.flat, idx, axis=1)
        ok = row_in & col_in
        if self.mask_flat is not None:
            ok &= self.mask_flat[idx]
        if self.all_finite:
            return vals, ok
        finite = np.isfinite(vals).all(axis=0)
        return np.where(finite, vals, 0.0), ok & finite


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
    pixels = _Taps(flat, mask_flat, shape, rows, cols)
    for i, tr in enumerate(taps):
        for j, tc in enumerate(taps):
            vals, ok = pixels.at(r0 + tr, c0 + tc)
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
    corners = [(dr, dc, (fr if dr else 1.0 - fr) * (fc if dc else 1.0 - fc))
               for dr in (0, 1) for dc in (0, 1)]
    acc = np.zeros((bands, rows.size), dtype=np.float64)
    good = np.zeros(rows.size, dtype=np.float64)
    dx, dy = shift
    if dx == 0.0 and dy == 0.0:
        pixels_at = _Taps(flat, mask_flat, (h, w), r0i, c0i)
        for dr, dc, weight in corners:
            vals, ok = pixels_at.at(dr, dc)
            acc += vals * weight
            good += ok * weight
        return acc.T, good > 0.999
    # the distinct pixels under all footprints (samples overlap heavily), moved once each
    inside = [(r0i + dr >= 0) & (r0i + dr < h) & (c0i + dc >= 0) & (c0i + dc < w)
              for dr, dc, _ in corners]
    idx = [np.clip(r0i + dr, 0, h - 1) * w + np.clip(c0i + dc, 0, w - 1) for dr, dc, _ in corners]
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
