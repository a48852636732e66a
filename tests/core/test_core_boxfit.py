"""The compiled box-constrained fits: the best point of the box, as a general solver finds it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from railwatch.core.boxfit import box_fit, explained_residual


def _cost(y: np.ndarray, a: np.ndarray, c: np.ndarray, ridge: tuple[float, float]) -> float:
    return float(np.sum((y - a @ c) ** 2) + ridge[0] * c[0] ** 2 + ridge[1] * c[1] ** 2)


def _rows(seed: int, n: int = 300) -> tuple[np.ndarray, ...]:
    """Random rows, with the awkward ones: a zero column, both zero, collinear columns."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 4))
    a = rng.normal(size=(n, 4, 2))
    a[::7, :, 0] = 0.0
    a[::11, :, 1] = 0.0
    a[::13] = 0.0
    a[::17, :, 1] = 2.0 * a[::17, :, 0]
    lo = np.column_stack([rng.uniform(-0.5, 0.0, n), rng.uniform(0.0, 0.3, n)])
    hi = lo + rng.uniform(0.0, 1.0, (n, 2))
    return y, a, lo, hi


@pytest.mark.parametrize(("seed", "ridge"), [(0, (0.0, 0.0)), (1, (16.0, 0.0)), (2, (3.0, 0.5))])
def test_box_fit_finds_the_best_point_of_the_box(seed: int, ridge: tuple[float, float]) -> None:
    y, a, lo, hi = _rows(seed)
    got = box_fit(y, a, lo, hi, ridge)
    assert np.all(got >= lo - 1e-12) and np.all(got <= hi + 1e-12)
    for r in range(len(y)):
        # the ridge as extra rows of the least-squares problem
        big_a = np.vstack([a[r], np.diag(np.sqrt(ridge))])
        big_y = np.concatenate([y[r], [0.0, 0.0]])
        if np.allclose(lo[r], hi[r]):
            best = lo[r]
        else:
            best = lsq_linear(big_a, big_y, bounds=(lo[r], hi[r]), tol=1e-12).x
        assert _cost(y[r], a[r], got[r], ridge) <= _cost(y[r], a[r], best, ridge) + 1e-9


def test_an_unconstrained_fit_is_least_squares() -> None:
    rng = np.random.default_rng(3)
    y, a = rng.normal(size=(50, 4)), rng.normal(size=(50, 4, 2))
    wide = np.full((50, 2), 1e6)
    got = box_fit(y, a, -wide, wide)
    for r in range(50):
        np.testing.assert_allclose(got[r], np.linalg.lstsq(a[r], y[r], rcond=None)[0], atol=1e-9)


def test_the_residual_is_what_the_best_leak_and_shadow_leave() -> None:
    """Leak coefficient within its bounds (ridge-penalised), shadow within each row's, and each
    band's residual variance grown by the model error of what was explained there."""
    y, a, lo, hi = _rows(4)
    # the least leak per row: reversed leaks only where the leaking neighbour can shade
    lo_coef, hi_coef = np.where(np.arange(len(y)) % 2 == 0, -0.1, 0.0), 0.5
    ridge, error = 16.0, 0.08
    got = explained_residual(y, a[:, :, 0], a[:, :, 1], lo_coef, hi_coef, lo[:, 1], hi[:, 1], ridge,
                             error)
    c = box_fit(y, a, np.column_stack([lo_coef, lo[:, 1]]),
                np.column_stack([np.full(len(y), hi_coef), hi[:, 1]]), (ridge, 0.0))
    fit = np.einsum("nbi,ni->nb", a, c)
    expected = np.sum((y - fit) ** 2 / (1.0 + (error * fit) ** 2), axis=1) + ridge * c[:, 0] ** 2
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    nothing = explained_residual(y, 0 * a[:, :, 0], 0 * a[:, :, 1], lo_coef, hi_coef, lo[:, 1],
                                 hi[:, 1], ridge, error)
    np.testing.assert_allclose(nothing, np.sum(y**2, axis=1))  # nothing to explain with
