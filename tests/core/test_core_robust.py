"""Robust statistics: the fast medians are numpy's to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.core.robust import (
    _kept_median,
    median,
    quantile,
    robust_covariance,
    trimmed_linear_fits,
)


@pytest.mark.parametrize("seed", range(6))
def test_median_equals_numpys_median(seed: int) -> None:
    """Every axis, keepdims, odd and even lengths, ties, NaN and inf rows, both float widths."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 8, size=rng.integers(1, 4)))
        a = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4)).astype(
            rng.choice([np.float32, np.float64])
        )
        if rng.random() < 0.3:
            a = np.round(a)
        if rng.random() < 0.2:
            a.flat[rng.integers(a.size)] = np.nan
        if rng.random() < 0.1:
            a.flat[rng.integers(a.size)] = -np.inf
        axis = rng.choice([None, *range(-a.ndim, a.ndim)])
        keepdims = bool(rng.random() < 0.3)
        with np.errstate(all="ignore"):
            expected = np.median(a, axis=axis, keepdims=keepdims)
            got = median(a, axis=axis, keepdims=keepdims)
        assert type(got) is type(expected)
        assert np.shape(got) == np.shape(expected) and np.asarray(got).dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(4))
def test_quantile_equals_numpys_quantile(seed: int) -> None:
    """float64 values are numpy's to the bit (ends, ties, NaN); other dtypes are numpy's own."""
    rng = np.random.default_rng(seed)
    for _ in range(500):
        a = rng.normal(size=int(rng.integers(1, 60))) * 10.0 ** rng.integers(-3, 4)
        if rng.random() < 0.3:
            a = np.round(a)
        if rng.random() < 0.05:
            a[rng.integers(a.size)] = np.nan
        if rng.random() < 0.2:
            a = a.astype(np.float32)
        q = float(rng.choice([rng.random(), 0.0, 0.25, 0.5, 1.0]))
        expected = float(np.quantile(a, q))
        got = quantile(a, q)
        assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_mcd_consistency_is_the_truncated_chi2_variance_ratio() -> None:
    """Computed with scipy.special (no scipy.stats import in the workers): same as chi2's."""
    from scipy.stats import chi2

    from railwatch.core.robust import _mcd_consistency

    for q in (0.3, 0.5, 0.75):
        for bands in (3, 4):
            expected = q / chi2.cdf(chi2.ppf(q, bands), bands + 2)
            assert abs(_mcd_consistency(q, bands) - expected) < 1e-12


def test_covariance_about_an_anchor_is_the_spread_of_the_rows_nearest_it() -> None:
    # 70 % of the rows are a tight cluster far from zero (a train's roofs), 30 % noise about
    # zero with sigma 10 (empty ballast). Of the quarter of the rows nearest the centre, the
    # bulk's spread is the cluster's; the spread about zero is the ballast's (the keep share
    # must be below the share of rows that did not change; the Gaussian rescaling takes every
    # row for one that did not change, so it overstates the ballast's sigma here, 10 -> 16)
    rng = np.random.default_rng(5)
    cars = rng.normal(-300.0, 2.0, (700, 4))
    ballast = rng.normal(0.0, 10.0, (300, 4))
    rows = np.concatenate([cars, ballast])
    floor = np.full(4, 0.1)
    bulk = np.sqrt(np.diag(robust_covariance(rows, floor, keep_quantile=0.25)))
    about_zero = np.sqrt(np.diag(robust_covariance(rows, floor, keep_quantile=0.25, anchor=np.zeros(4))))
    assert np.all(bulk < 3.0)
    assert np.all((about_zero > 8.0) & (about_zero < 20.0)), about_zero


def test_covariance_recovers_a_correlated_gaussian_under_outliers_and_skips_nan_rows() -> None:
    # 80 % correlated Gaussian rows, 20 % gross outliers: the light MCD gives the Gaussian's
    # covariance (a little wide: its rescaling takes every row for a Gaussian one), and rows
    # with a NaN are left out, not propagated
    rng = np.random.default_rng(11)
    true = np.array([[4.0, 1.8, 0.0], [1.8, 2.0, -0.6], [0.0, -0.6, 1.0]])
    rows = rng.multivariate_normal(np.zeros(3), true, size=1600)
    rows[:320] = rng.normal(0.0, 1.0, (320, 3)) + np.array([40.0, -25.0, 30.0])
    cov = robust_covariance(rows, np.full(3, 1e-3))
    assert np.allclose(cov, true, rtol=0.3, atol=0.2), cov
    holed = rows.copy()
    holed[::97, 1] = np.nan
    kept = rows[np.isfinite(holed).all(axis=1)]
    assert np.array_equal(robust_covariance(holed, np.full(3, 1e-3)),
                          robust_covariance(kept, np.full(3, 1e-3)))


@pytest.mark.parametrize("seed", range(4))
def test_kept_median_is_the_middle_of_the_row_with_dropped_entries_at_either_end(seed: int) -> None:
    """The compiled kept-values median is numpy's median of the row with its dropped entries
    set to -inf and +inf in turn, to the bit: odd and even rows, ties, none or all kept."""
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        values = rng.normal(size=n)
        if rng.random() < 0.3:
            values = np.round(values)
        keep = rng.random(n) < rng.choice([0.0, 0.3, 0.7, 1.0])
        padded = np.where(keep, values, np.where(np.cumsum(~keep) % 2 == 0, np.inf, -np.inf))
        with np.errstate(invalid="ignore"):
            expected = float(np.median(padded))
        got = _kept_median(values, keep, np.empty(n))
        assert got == expected or (np.isnan(got) and np.isnan(expected))



def test_trimmed_fit_recovers_gain_and_offset_under_changed_pixels() -> None:
    """A sixth of the pixels changed (cars, clouds): the fit keeps the others and recovers each
    band's gain and offset; the changed pixels are left out. Residuals are trimmed about their
    median: trimmed about zero, a start line off by more than the trim (the quartiles of a
    scene with changed pixels) dropped every pixel, and the band fell back to least squares
    over all of them (offsets 100-200 DN off here)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(500, 3000, (4, 2048))
    gains, offsets = np.array([1.1, 0.9, 1.3, 0.7]), np.array([40.0, -25.0, 0.0, 120.0])
    y = gains[:, None] * x + offsets[:, None] + rng.normal(0, 5, x.shape)
    changed = rng.random(2048) < 0.17
    y[:, changed] += rng.uniform(300, 2000, (4, int(changed.sum())))
    g, o, keep = trimmed_linear_fits(x, y)
    np.testing.assert_allclose(g, gains, rtol=0.01)
    np.testing.assert_allclose(o, offsets, atol=25.0)
    plain = np.array([np.polyfit(x[b], y[b], 1)[1] for b in range(4)])  # least squares
    assert np.all(np.abs(plain - offsets) > 100.0)
    assert not keep[:, changed].any(axis=0).mean() > 0.02
    assert keep[:, ~changed].all(axis=0).mean() > 0.9
