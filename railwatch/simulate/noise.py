"""World-anchored smooth noise and hashing, so every scene of a place shows the same ground.

Values hang on a lattice fixed in world (UTM) metres and come from a stateless integer hash,
so any footprint, origin or sub-pixel shift samples the same landscape. Fields are evaluated on
axis-aligned grids separably (cubic B-spline taps along x, then along y), which is much
faster than `map_coordinates` on millions of pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

# Std of a cubic B-spline surface over unit-variance iid node values: 151/315 per axis (the
# mean summed squared weights); dividing by it normalises fields to std 1.
_FIELD_STD = 151.0 / 315.0
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


@dataclass(frozen=True)
class _Taps:
    """Cubic B-spline taps of sample points on a lattice: 4 node indices and weights each."""

    first: int  # world index of lattice node 0
    n_nodes: int
    index: NDArray[np.intp]  # (n,) local index of each point's first node
    weights: F32  # (4, n)


def _taps(coords: F64, spacing: float) -> _Taps:
    t = np.asarray(coords, dtype=np.float64) / spacing
    base = np.floor(t)
    f = (t - base).astype(np.float32)
    first = int(base.min()) - 1
    f2, f3 = f * f, f * f * f
    weights = np.stack([
        (1.0 - f) ** 3 / 6.0,
        (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
        (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
        f3 / 6.0,
    ]).astype(np.float32)  # fmt: skip
    index = (base - first - 1).astype(np.intp)
    return _Taps(first, int(base.max()) + 3 - first, index, weights)


def _interpolate(values: F32, tx: _Taps, ty: _Taps) -> F32:
    """B-spline surface of lattice `values` at the grid (ty points × tx points).

    Gathers and multiply-adds in a fixed order, no BLAS: matrix products would be faster but
    their rounding depends on the BLAS thread count, and pixels must be byte-identical
    whether a scene is rendered inline or in a worker process.
    """
    rows = np.zeros((values.shape[0], tx.index.size), dtype=np.float32)
    for k in range(4):
        rows += values[:, tx.index + k] * tx.weights[k]
    out = np.zeros((ty.index.size, tx.index.size), dtype=np.float32)
    buf = np.empty_like(out)
    for k in range(4):
        np.take(rows, ty.index + k, axis=0, out=buf)
        buf *= ty.weights[k][:, None]
        out += buf
    return out


def _lattice_values(tx: _Taps, ty: _Taps, key: int) -> F32:
    ii = np.arange(tx.first, tx.first + tx.n_nodes, dtype=np.int64)
    jj = np.arange(ty.first, ty.first + ty.n_nodes, dtype=np.int64)
    values: F32 = ((hash01(ii[None, :], jj[:, None], key) * 2.0 - 1.0) * np.sqrt(3.0)).astype(np.float32)
    return values


def lattice_field(xs: F64, ys: F64, spacing: float, key: int) -> F32:
    """Smooth noise (mean 0, std ≈ 1) at grid points (ys × xs) of a world lattice `spacing` m."""
    tx, ty = _taps(xs, spacing), _taps(ys, spacing)
    out = _interpolate(_lattice_values(tx, ty, key), tx, ty)
    out *= np.float32(1.0 / _FIELD_STD)
    return out


def fbm(xs: F64, ys: F64, octaves: Sequence[tuple[float, float]], key: int) -> F32:
    """Sum of lattice fields, one per (spacing_m, amplitude) octave: natural multi-scale texture.

    Coarser octaves are sampled at the finest lattice's nodes and added to its values, so the
    full-resolution interpolation runs once, not once per octave (the B-spline barely smooths
    them further).
    """
    order = sorted(range(len(octaves)), key=lambda k: octaves[k][0])
    fine_spacing, fine_amp = octaves[order[0]]
    tx, ty = _taps(xs, fine_spacing), _taps(ys, fine_spacing)
    values = _lattice_values(tx, ty, key + 7919 * (order[0] + 1)) * np.float32(fine_amp)
    node_x = (tx.first + np.arange(tx.n_nodes, dtype=np.float64)) * fine_spacing
    node_y = (ty.first + np.arange(ty.n_nodes, dtype=np.float64)) * fine_spacing
    for k in order[1:]:
        spacing, amplitude = octaves[k]
        coarse = lattice_field(node_x, node_y, spacing, key + 7919 * (k + 1))
        values += coarse * np.float32(amplitude * _FIELD_STD)
    out = _interpolate(values, tx, ty)
    out *= np.float32(1.0 / _FIELD_STD)
    return out


def smoothstep(x: F32) -> F32:
    """Hermite ramp 0→1 on [0, 1]: soft edges for clouds and masks."""
    c = np.clip(x, 0.0, 1.0)
    return (c * c * (3.0 - 2.0 * c)).astype(np.float32)
