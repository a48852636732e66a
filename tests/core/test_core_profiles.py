"""Track profiles: sampling geometry, masks, and the background model from history."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.core import TrackLine, TrackProfile, background_from_history, extract_profiles

GSD = 3.0


def ramp_image(h: int = 40, w: int = 60) -> np.ndarray:
    """Band 0 = column index, band 1 = row index (value of the pixel whose centre is there)."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([cols, rows, np.full_like(cols, 100.0)])


def test_samples_follow_the_line_with_centre_convention() -> None:
    image = ramp_image()
    # a horizontal line along row coordinate 20.5 (the centre of pixel row 20) from x=5 to x=45
    line = TrackLine("a", (np.array([[5.0, 20.5], [45.0, 20.5]]),))
    prof = extract_profiles(image, np.ones((40, 60), bool), [line], GSD, step_m=1.0)["a"]
    n = prof.values.shape[0]
    assert n == 120 and prof.step_m == pytest.approx(1.0)  # 40 px * 3 m
    x = 5.0 + (np.arange(n) + 0.5) / GSD  # sample positions in pixel coordinates
    # a pixel's value sits at its centre (c + 0.5): bilinear sampling returns x - 0.5
    np.testing.assert_allclose(prof.values[:, 0], x - 0.5, atol=1e-4)
    np.testing.assert_allclose(prof.values[:, 1], 20.0, atol=1e-4)
    np.testing.assert_allclose(prof.positions[:, 0], x)
    assert prof.valid.all()


def test_parts_are_laid_end_to_end() -> None:
    parts = (np.array([[5.0, 10.5], [15.0, 10.5]]), np.array([[20.0, 30.5], [20.0, 20.5]]))
    prof = extract_profiles(ramp_image(), np.ones((40, 60), bool), [TrackLine("m", parts)],
                            GSD)["m"]
    assert prof.length_m == pytest.approx(60.0)  # (10 + 10) px * 3 m
    first, second = prof.values[:30], prof.values[30:]
    np.testing.assert_allclose(first[:, 1], 10.0, atol=1e-4)
    np.testing.assert_allclose(second[:, 0], 19.5, atol=1e-4)
    assert second[0, 1] > second[-1, 1]  # the second part runs upwards


def test_masked_pixels_make_samples_invalid() -> None:
    valid = np.ones((40, 60), bool)
    valid[15:26, 20:25] = False  # a small cloud across the line
    line = TrackLine("a", (np.array([[5.0, 20.5], [45.0, 20.5]]),))
    prof = extract_profiles(ramp_image(), valid, [line], GSD)["a"]
    x = prof.positions[:, 0]
    assert not prof.valid[(x > 20) & (x < 25)].any()
    assert np.isnan(prof.values[~prof.valid]).all()
    # invalid areas are grown by a pixel, and nothing far from the cloud is touched
    assert not prof.valid[(x > 18.6) & (x < 26.4)].any()
    assert prof.valid[(x < 17) | (x > 28)].all()


def test_samples_off_the_image_are_uncovered() -> None:
    line = TrackLine("a", (np.array([[-10.0, 20.5], [30.0, 20.5]]),))
    prof = extract_profiles(ramp_image(), np.ones((40, 60), bool), [line], GSD)["a"]
    off = prof.positions[:, 0] < 0
    assert off.any() and not prof.covered[off].any() and not prof.valid[off].any()
    assert prof.covered[~off].all()


def _profile(values: np.ndarray, valid: np.ndarray | None = None) -> TrackProfile:
    ok = np.ones(len(values), bool) if valid is None else valid
    return TrackProfile("t", 1.0, values.astype(np.float32), ok)


def test_history_median_ignores_a_minority_car() -> None:
    rng = np.random.default_rng(0)
    ballast = np.array([1100.0, 1200.0, 1300.0, 1700.0])
    scenes = []
    for i in range(7):
        v = ballast + rng.normal(0, 20, size=(200, 4))
        if i in (1, 4, 5):  # a car in 3 of 7 scenes, each time somewhere else but overlapping
            v[50 + 10 * i : 110 + 10 * i] = [400.0, 420.0, 450.0, 500.0]
        scenes.append({"t": _profile(v)})
    bg = background_from_history(scenes, min_scenes=5)
    assert bg is not None
    # the median of the 4-7 ballast samples left at a position: within 4 sigma of the truth,
    # nowhere near the car (700+ below), and no step where cars stood
    np.testing.assert_allclose(bg["t"].values, np.broadcast_to(ballast, (200, 4)), atol=80.0)
    under_cars = bg["t"].values[60:160].mean(axis=0)
    elsewhere = np.concatenate([bg["t"].values[:50], bg["t"].values[170:]]).mean(axis=0)
    assert np.all(np.abs(under_cars - elsewhere) < 30.0)
    assert bg["t"].valid.all()


def test_history_needs_enough_scenes_and_samples() -> None:
    v = np.full((50, 4), 1000.0)
    assert background_from_history([{"t": _profile(v)}] * 4, min_scenes=5) is None
    # an all-invalid scene does not count
    dead = _profile(np.full((50, 4), np.nan), np.zeros(50, bool))
    assert background_from_history([{"t": _profile(v)}] * 4 + [{"t": dead}], min_scenes=5) is None
    # positions seen in fewer than history_min_valid scenes are invalid
    masked = np.ones(50, bool)
    masked[:10] = False
    hist = [{"t": _profile(v, masked)}] * 4 + [{"t": _profile(v)}] * 2
    bg = background_from_history(hist, min_scenes=5)
    assert bg is not None
    assert not bg["t"].valid[:10].any() and bg["t"].valid[10:].all()
