"""The history median: exact, and the same from the model's stacks as from profiles in hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from railwatch.core import TrackProfile, background_from_history
from railwatch.core.background import BackgroundParams, SceneProfiles, background_at, build_model
from railwatch.core.history import WindowMedians, median_of_valid

DAY0 = datetime(2023, 9, 1, tzinfo=UTC)


def test_median_of_valid_is_the_median_of_the_valid_entries_only() -> None:
    rng = np.random.default_rng(3)
    stack = rng.normal(100.0, 20.0, (9, 50, 4)).astype(np.float32)
    ok = rng.random((9, 50, 1)) < 0.6
    ok[:, 0] = False  # a position no scene saw
    ok[:, 1] = True  # one every scene saw (an odd count)
    ok[:4, 2], ok[4:, 2] = True, False  # an even count: the mean of the middle two
    got = median_of_valid(stack, ok)
    expect = np.nanmedian(np.where(ok, stack, np.nan)[:, 1:], axis=0)
    assert got.dtype == np.float32 and got.shape == (50, 4)
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1:], expect, rtol=1e-6)
    middle = np.sort(stack[:4, 2], axis=0)[1:3]
    assert np.array_equal(got[2], (middle[0] + middle[1]) / 2)
    # invalid entries, however wild, change nothing
    wild = np.where(ok, stack, np.float32(1e9))
    assert np.array_equal(median_of_valid(wild, ok), got, equal_nan=True)



def test_window_medians_moved_on_equal_a_fresh_sort_of_each_window() -> None:
    """Windows one or a few entries on (kept sorted and moved on), the same window again, a jump
    back, a growing window: every median and count the same bytes as `median_of_valid`, with
    ties, positions never valid, and positions valid in only a few entries."""
    rng = np.random.default_rng(11)
    stack = rng.normal(100.0, 20.0, (40, 30, 3)).astype(np.float32)
    stack[:, :5] = np.round(stack[:, :5] / 20.0)  # many ties
    ok = rng.random((40, 30, 3)) < 0.7
    ok[:, 5] = False
    ok[:, 6] = rng.random((40, 3)) < 0.1
    entries = np.where(ok, stack, np.float32(np.nan))
    medians = WindowMedians(entries)
    windows = [(0, 3), (0, 8), (1, 9), (2, 10), (2, 10), (5, 13), (6, 14), (9, 17), (0, 8),
               (20, 28), *[(k, k + 12) for k in range(20, 29)], (27, 39), (28, 40)]
    for first, last in windows:
        median, count = medians.median(first, last)
        expect = median_of_valid(stack[first:last], ok[first:last])
        assert median.dtype == np.float32 and median.shape == (30, 3)
        assert np.array_equal(median, expect, equal_nan=True), (first, last)
        assert np.array_equal(count, ok[first:last].sum(axis=0)), (first, last)

def _scene(day: int, rng: np.random.Generator, sides: bool) -> SceneProfiles:
    profiles = {}
    for t, n in (("a", 40), ("b", 25)):
        values = rng.normal(100.0, 15.0, (n, 4)).astype(np.float32)
        valid = rng.random(n) < 0.8
        values[~valid] = np.nan
        side = rng.normal(90.0, 15.0, (n, 2, 4)).astype(np.float32)
        side[rng.random((n, 2)) < 0.2] = np.nan
        profiles[t] = TrackProfile(t, 1.0, values, valid, np.zeros((n, 2)),
                                   **({"sides": side} if sides else {}))
    return SceneProfiles(f"sim/s{day:02d}", DAY0 + timedelta(days=day), 0.9, 0.9, profiles)


def test_model_windows_equal_the_median_of_the_same_profiles() -> None:
    """Each window of the model's stacks gives byte for byte `background_from_history` of the
    same scenes' profiles, sides included, and none where one scene of the window has none."""
    rng = np.random.default_rng(7)
    params = BackgroundParams(window=5, capacity=12, min_scenes=3)
    scenes = [_scene(d, rng, sides=d != 9) for d in range(1, 13)]
    model = build_model(scenes, "test", params)
    for day in range(4, 15):
        got = background_at(model, DAY0 + timedelta(days=day), params)
        window = [s for s in scenes if s.acquired < DAY0 + timedelta(days=day)][-5:]
        expect = background_from_history([s.profiles for s in window], min_scenes=3)
        assert got.profiles is not None and expect is not None
        assert got.scenes == tuple(s.key for s in window)
        for t in ("a", "b"):
            g, e = got.profiles[t], expect[t]
            assert np.array_equal(g.values, e.values, equal_nan=True)
            assert np.array_equal(g.valid, e.valid) and np.array_equal(g.covered_mask, e.covered_mask)
            assert np.array_equal(g.sides, e.sides, equal_nan=True)
            assert g.sides.shape[0] == (0 if any(s.key == "sim/s09" for s in window) else len(g.valid))
        # asked again (a cloudy scene after it shares the window): the same object
        assert background_at(model, DAY0 + timedelta(days=day), params) is got
