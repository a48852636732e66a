"""Two-column least squares on a box, row by row, compiled (numba): the neighbour model asks
for tens of thousands of such fits per scene, a few hundred at a time, and numpy spent its time
creating the temporaries of each small batch (on the 3 m pipeline's scenes the fits and their
residuals took 14 of the neighbour model's 28 ms a scene; compiled, 2).

A convex quadratic on a box is minimised inside it or on an edge, so the unconstrained solution
and the four edge solutions cover every case (zero columns give c = 0). With
g = a'a + diag(ridge) and h = a'y the cost is |y|² - 2 c'h + c'g c, evaluated in closed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.jit import compiled

Floats = npt.NDArray[np.float64]


@compiled
def _solve_row(y: Any, col0: Any, col1: Any, lo0: float, lo1: float, hi0: float, hi1: float,
               ridge0: float, ridge1: float) -> tuple[float, float]:
    """argmin |y - a c|² + ridge0 c0² + ridge1 c1² over the box, for one row (y (B,), the
    columns of a (B, 2))."""
    g00, g11, g01, h0, h1 = ridge0, ridge1, 0.0, 0.0, 0.0
    for b in range(y.shape[0]):
        a0, a1 = col0[b], col1[b]
        g00 += a0 * a0
        g11 += a1 * a1
        g01 += a0 * a1
        h0 += a0 * y[b]
        h1 += a1 * y[b]
    det = g00 * g11 - g01 * g01
    if det > 1e-12 * max(g00 * g11, 1e-300):
        free0, free1 = (g11 * h0 - g01 * h1) / det, (g00 * h1 - g01 * h0) / det
    else:  # at most one column carries anything (pinv's answer: the other is 0)
        free0 = h0 / g00 if g00 > 0 else 0.0
        free1 = h1 / g11 if g00 <= 0 and g11 > 0 else 0.0
    best, c0, c1 = np.inf, 0.0, 0.0
    if lo0 <= free0 <= hi0 and lo1 <= free1 <= hi1:
        best, c0, c1 = -2.0 * (free0 * h0 + free1 * h1) + free0 * free0 * g00 \
            + 2.0 * free0 * free1 * g01 + free1 * free1 * g11, free0, free1
    for edge in range(4):
        if edge < 2:  # c0 on an edge, c1 best given it
            e0 = lo0 if edge == 0 else hi0
            e1 = min(max((h1 - g01 * e0) / g11 if g11 > 0 else 0.0, lo1), hi1)
        else:  # c1 on an edge, c0 best given it
            e1 = lo1 if edge == 2 else hi1
            e0 = min(max((h0 - g01 * e1) / g00 if g00 > 0 else 0.0, lo0), hi0)
        cost = -2.0 * (e0 * h0 + e1 * h1) + e0 * e0 * g00 + 2.0 * e0 * e1 * g01 + e1 * e1 * g11
        if cost < best:
            best, c0, c1 = cost, e0, e1
    return c0, c1


@compiled
def _box_fit(y: Any, a: Any, lo: Any, hi: Any, ridge0: float, ridge1: float) -> Any:
    out = np.empty((y.shape[0], 2))
    for r in range(y.shape[0]):
        out[r, 0], out[r, 1] = _solve_row(y[r], a[r, :, 0], a[r, :, 1], lo[r, 0], lo[r, 1],
                                          hi[r, 0], hi[r, 1], ridge0, ridge1)
    return out


def box_fit(
    y: Floats, a: Floats, lo: Floats, hi: Floats, ridge: tuple[float, float] = (0.0, 0.0)
) -> Floats:
    """argmin |y - a c|² + Σ ridge_i c_i² over lo <= c <= hi per row (n, 2); y (n, B),
    a (n, B, 2), lo/hi (n, 2): the solver `explained_residual` uses, on its own (tested so)."""
    return np.asarray(_box_fit(*(np.ascontiguousarray(x, dtype=np.float64) for x in (y, a, lo, hi)),
                               float(ridge[0]), float(ridge[1])), dtype=np.float64)


@compiled
def explained_cost(d: Any, bleed: Any, dark: Any, lo0: float, hi0: float, lo_dark: float,
                   hi_dark: float, ridge0: float, model_error: float) -> float:
    """`explained_residual` of one row (d, bleed, dark of shape (B,)), compiled."""
    c0, c1 = _solve_row(d, bleed, dark, lo0, lo_dark, hi0, hi_dark, ridge0, 0.0)
    cost = ridge0 * c0 * c0
    for b in range(d.shape[0]):
        fit = c0 * bleed[b] + c1 * dark[b]
        cost += (d[b] - fit) ** 2 / (1.0 + (model_error * fit) ** 2)
    return float(cost)


@compiled
def _explained_residual(d: Any, bleed: Any, dark: Any, lo0: Any, hi0: float, lo_dark: Any,
                        hi_dark: Any, ridge0: float, model_error: float) -> Any:
    out = np.empty(d.shape[0])
    for r in range(d.shape[0]):
        out[r] = explained_cost(d[r], bleed[r], dark[r], lo0[r], hi0, lo_dark[r], hi_dark[r],
                                ridge0, model_error)
    return out


def explained_residual(
    d: Floats, bleed: Floats, dark: Floats, lo_coef: Floats, hi_coef: float, lo_dark: Floats,
    hi_dark: Floats, ridge: float, model_error: float,
) -> Floats:
    """Per row of the whitened difference d (n, B): the chi-square left after the best
    leak (coefficient within lo_coef (per row) .. hi_coef, of `bleed`, ridge-penalised) plus
    shadow (within lo_dark..hi_dark, of `dark`), each band's residual variance growing by `model_error` of
    what was explained there (the leak and shadow models are approximate), plus the ridge."""
    return np.asarray(_explained_residual(
        *(np.ascontiguousarray(x, dtype=np.float64) for x in (d, bleed, dark, lo_coef)),
        float(hi_coef),
        *(np.ascontiguousarray(x, dtype=np.float64) for x in (lo_dark, hi_dark)),
        float(ridge), float(model_error)), dtype=np.float64)
