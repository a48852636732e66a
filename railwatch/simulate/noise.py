"""World-anchored smooth noise and hashing, so every scene of a place shows the same ground.

Values hang on a lattice fixed in world (UTM) metres and come from a stateless integer hash,
so any footprint, origin or sub-pixel shift samples the same landscape. Fields are evaluated on
axis-aligned grids as two small matrix products (cubic B-spline weights), which is much faster
than `map_coordinates` on millions of pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

# Mean of the summed squared cubic B-spline weights in 1-D (151/315): normalises fields to std 1.
_BSPLINE_GAIN = float(np.sqrt(151.0 / 315.0))
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0xFF51AFD7ED558CCD)
_M4 = np.uint64(0xC4CEB9FE1A85EC53)


def stable_key(*parts: object) -> int:
    """A 32-bit key from strings/ints that is the same in every process (unlike `hash`)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


def hash01(i: NDArray[np.int64], j: NDArray[np.int64], key: int) -> F64:
    """Uniform [0, 1) values from integer lattice coordinates: stateless, so world-fixed."""
    iu = np.asarray(i, dtype=np.int64).view(np.uint64)
    ju = np.asarray(j, dtype=np.int64).view(np.uint64)
    salt = np.uint64(((key & 0xFFFFFFFF) * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF)
    h = iu * _M1 + ju * _M2 + salt
    h ^= h >> np.uint64(33)
    h *= _M3
    h ^= h >> np.uint64(29)
    h *= _M4
    h ^= h >> np.uint64(32)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _weights(coords: F64, spacing: float) -> tuple[F32, int]:
    """Dense cubic B-spline interpolation matrix (len(coords) × lattice nodes) and first node."""
    t = coords / spacing
    base = np.floor(t).astype(np.int64)
    f = t - base
    first = int(base.min()) - 1
    n_nodes = int(base.max()) + 3 - first
    w = np.zeros((coords.size, n_nodes), dtype=np.float32)
    rows = np.arange(coords.size)
    f2, f3 = f * f, f * f * f
    taps = (
        (1.0 - f) ** 3 / 6.0,
        (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
        (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
        f3 / 6.0,
    )
    for k, tap in enumerate(taps):
        w[rows, base - first - 1 + k] = tap
    return w, first


def lattice_field(xs: F64, ys: F64, spacing: float, key: int) -> F32:
    """Smooth noise (mean 0, std ≈ 1) at grid points (ys × xs) of a world lattice `spacing` m."""
    wx, ix0 = _weights(np.asarray(xs, dtype=np.float64), spacing)
    wy, iy0 = _weights(np.asarray(ys, dtype=np.float64), spacing)
    ii = np.arange(ix0, ix0 + wx.shape[1], dtype=np.int64)
    jj = np.arange(iy0, iy0 + wy.shape[1], dtype=np.int64)
    values = (hash01(ii[None, :], jj[:, None], key) * 2.0 - 1.0) * np.sqrt(3.0)
    out: F32 = (wy @ values.astype(np.float32)) @ wx.T
    out *= np.float32(1.0 / (_BSPLINE_GAIN * _BSPLINE_GAIN))
    return out


def fbm(xs: F64, ys: F64, octaves: Sequence[tuple[float, float]], key: int) -> F32:
    """Sum of lattice fields, one per (spacing_m, amplitude) octave: natural multi-scale texture."""
    total = np.zeros((ys.size, xs.size), dtype=np.float32)
    for k, (spacing, amplitude) in enumerate(octaves):
        total += np.float32(amplitude) * lattice_field(xs, ys, spacing, key + 7919 * (k + 1))
    return total


def smoothstep(x: F32) -> F32:
    """Hermite ramp 0→1 on [0, 1]: soft edges for clouds and masks."""
    c = np.clip(x, 0.0, 1.0)
    return (c * c * (3.0 - 2.0 * c)).astype(np.float32)
