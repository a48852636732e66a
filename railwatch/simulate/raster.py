"""Small array helpers shared by the renderers: line bands, area coverage, filters.

Grids are north-up and axis-aligned: a grid is given by the world x of its column centres
(`xs`, increasing) and the world y of its row centres (`ys`, decreasing), uniformly spaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Band:
    """The pixels of a grid near one piece of a line, in the line's own frame."""

    rows: slice
    cols: slice
    s: F32  # metres along the line from its first vertex (at each pixel of the window)
    d: F32  # signed metres across it (positive to the left of the direction of travel)
    ux: float  # unit direction of the piece, east
    uy: float  # unit direction of the piece, north


def line_bands(
    xy: F64, along: F64, breaks: tuple[int, ...], xs: F64, ys: F64, reach: float, chunk: float = 80.0
) -> Iterator[Band]:
    """Windows covering every pixel within `reach` metres of a polyline, piece by piece.

    Each segment is cut into pieces of at most `chunk` metres so that a window (the piece's
    bounding box) holds little besides the band itself, whatever the line's direction.
    """
    step = float(xs[1] - xs[0]) if xs.size > 1 else 1.0
    for k in range(len(xy) - 1):
        if k + 1 in breaks:
            continue
        (x0, y0), (x1, y1) = xy[k], xy[k + 1]
        seg = float(np.hypot(x1 - x0, y1 - y0))
        if seg <= 0:
            continue
        ux, uy = (x1 - x0) / seg, (y1 - y0) / seg
        n = max(1, int(np.ceil(seg / chunk)))
        for p in range(n):
            a, b = seg * p / n, seg * (p + 1) / n
            lo = -reach if p == 0 else 0.0
            hi = reach if p == n - 1 else 0.0
            px = (x0 + ux * (a + lo), x0 + ux * (b + hi))
            py = (y0 + uy * (a + lo), y0 + uy * (b + hi))
            c0 = int(np.floor((min(px) - reach - xs[0]) / step))
            c1 = int(np.ceil((max(px) + reach - xs[0]) / step)) + 1
            r0 = int(np.floor((ys[0] - max(py) - reach) / step))
            r1 = int(np.ceil((ys[0] - min(py) + reach) / step)) + 1
            c0, c1 = max(c0, 0), min(c1, xs.size)
            r0, r1 = max(r0, 0), min(r1, ys.size)
            if c0 >= c1 or r0 >= r1:
                continue
            dx = (xs[c0:c1] - x0).astype(np.float32)[None, :]
            dy = (ys[r0:r1] - y0).astype(np.float32)[:, None]
            s_local = dx * np.float32(ux) + dy * np.float32(uy)
            d = dy * np.float32(ux) - dx * np.float32(uy)
            # keep each pixel in exactly one piece: clip the along-range of inner pieces
            keep = np.ones_like(s_local, dtype=bool)
            if p > 0:
                keep &= s_local >= a
            if p < n - 1:
                keep &= s_local < b
            d = np.where(keep, d, np.float32(np.inf))
            yield Band(slice(r0, r1), slice(c0, c1), s_local + np.float32(along[k]), d, ux, uy)


def ramp(x: F32) -> F32:
    """Fraction of a unit-wide pixel covered by a half-plane whose edge is `x` units inside."""
    out: F32 = np.clip(x + np.float32(0.5), 0.0, 1.0).astype(np.float32)
    return out


def block_mean(a: F32, factor: int) -> F32:
    """Area-average (…, H·f, W·f) to (…, H, W): how a coarse detector integrates fine detail."""
    *lead, h, w = a.shape
    r = a.reshape(*lead, h // factor, factor, w // factor, factor)
    out: F32 = r.mean(axis=(-3, -1), dtype=np.float32)
    return out


def blur3(a: F32, w: float) -> F32:
    """Separable 3-tap blur [w, 1-2w, w] over the last two axes of (bands, H, W), edges held."""
    wf, cf = np.float32(w), np.float32(1 - 2 * w)
    out = np.empty_like(a)
    tmp = np.empty(a.shape[1:], dtype=a.dtype)
    side = np.empty(a.shape[1:], dtype=a.dtype)
    for k in range(a.shape[0]):
        src = a[k]
        np.multiply(src, cf, out=tmp)  # along rows
        np.multiply(src[:-1], wf, out=side[1:])
        np.multiply(src[:1], wf, out=side[:1])
        tmp += side
        np.multiply(src[1:], wf, out=side[:-1])
        np.multiply(src[-1:], wf, out=side[-1:])
        tmp += side
        dst = out[k]
        np.multiply(tmp, cf, out=dst)  # along columns
        np.multiply(tmp[:, :-1], wf, out=side[:, 1:])
        np.multiply(tmp[:, :1], wf, out=side[:, :1])
        dst += side
        np.multiply(tmp[:, 1:], wf, out=side[:, :-1])
        np.multiply(tmp[:, -1:], wf, out=side[:, -1:])
        dst += side
    return out


def grid_axes(left: float, top: float, step: float, width: int, height: int) -> tuple[F64, F64]:
    """World x of column centres and y of row centres of a north-up grid."""
    xs = left + (np.arange(width, dtype=np.float64) + 0.5) * step
    ys = top - (np.arange(height, dtype=np.float64) + 0.5) * step
    return xs, ys
