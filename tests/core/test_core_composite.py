"""The reference composite: a per-pixel median of dates, registered to it and normalised."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from railwatch.core import composite
from railwatch.core.composite import build_composite


@pytest.mark.parametrize("dates", [1, 2, 3, 4, 5, 8])
def test_the_median_is_numpys_median_of_the_normalised_clear_dates(dates: int) -> None:
    """The compiled per-pixel median gives numpy's nanmedian of the normalised clear dates to
    the bit (odd and even counts of clear dates, a NaN in a clear pixel left out, NaN where no
    clear date has a value), and 0 where too few dates saw a pixel clear."""
    rng = np.random.default_rng(5 + dates)
    images = [rng.uniform(500, 3000, (4, 23, 17)).astype(np.float32) for _ in range(dates)]
    valids = [rng.random((23, 17)) > 0.3 for _ in range(dates)]
    images[0][2, 5, 6], valids[0][5, 6] = np.nan, True  # clear, yet no value in one band
    for image, valid in zip(images, valids, strict=True):  # clear on every date, never a value
        image[1, 7, 8], valid[7, 8] = np.nan, True
    radiometry = [(tuple(rng.uniform(0.9, 1.1, 4)), tuple(rng.uniform(-20, 20, 4)))
                  for _ in range(dates)]
    least = min(3, dates)
    med, ok = composite._median(images, valids, radiometry, min_samples=least)

    normalised = np.stack([np.where(v[None], im * np.float32(g)[:, None, None] + np.float32(o)[:, None, None],
                                    np.nan)
                           for im, v, (g, o) in zip(images, valids, radiometry, strict=True)])
    expected_ok = np.sum(valids, axis=0) >= least
    assert np.array_equal(ok, expected_ok) and 0 < ok.sum() < ok.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        expected = np.nanmedian(normalised, axis=0)
    assert med.dtype == np.float32 and np.isnan(med[1, 7, 8])
    assert np.array_equal(med[:, ok], expected[:, ok].astype(np.float32), equal_nan=True)
    assert np.all(med[:, ~ok] == 0)


def test_a_car_on_two_of_five_dates_is_not_in_the_composite() -> None:
    """Cars move: the median of five dates is the ballast where a car stood on two of them; a
    pixel that fewer than three dates saw clear is not valid."""
    rng = np.random.default_rng(1)
    ground = rng.uniform(800, 2500, (4, 64, 64)).astype(np.float32)
    images, valids = [], []
    for day in range(5):
        image = ground + rng.normal(0, 5, ground.shape).astype(np.float32)
        if day in (1, 3):
            image[:, 30:34, 10:50] = 300.0  # a dark car
        valid = np.ones((64, 64), dtype=bool)
        if day < 3:
            valid[:8, :8] = False  # under a cloud on three dates
        images.append(image)
        valids.append(valid)
    result, valid, alignments = build_composite(images, valids)
    assert len(alignments) == 5
    assert not valid[:8, :8].any() and valid[8:, 8:].all()
    car = result[:, 30:34, 10:50]
    assert np.all(np.abs(car - ground[:, 30:34, 10:50]) < 60)  # the ballast, not the car
