"""The background model's pure logic: idempotent merges, no look-ahead, a bounded ring."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from railwatch.core import TrackProfile, background_from_history
from railwatch.core.background import (
    BackgroundModel,
    BackgroundParams,
    SceneProfiles,
    background_at,
    background_of,
    build_model,
    covers,
    merge_scene,
)

PARAMS = BackgroundParams(window=6, capacity=8, min_scenes=3)
DAY0 = datetime(2023, 9, 1, tzinfo=UTC)


def scene(day: int, level: float | None = None, valid_fraction: float = 1.0,
          confidence: float = 0.9) -> SceneProfiles:
    """A two-track scene whose every sample is `level` (default: the day number)."""
    value = float(day if level is None else level)
    profiles = {t: TrackProfile(t, 1.0, np.full((n, 4), value, np.float32), np.ones(n, bool),
                                np.zeros((n, 2)))
                for t, n in (("a", 20), ("b", 30))}
    return SceneProfiles(f"sim/s{day:02d}", DAY0 + timedelta(days=day), valid_fraction,
                         confidence, profiles)


def empty() -> BackgroundModel:
    return BackgroundModel(detector_version="test", capacity=PARAMS.capacity)


def test_merge_is_idempotent_and_order_free() -> None:
    scenes = [scene(d) for d in range(12)]
    model = build_model(scenes, "test", PARAMS)
    assert merge_scene(model, scenes[11], PARAMS) is model  # already there: the same object
    assert merge_scene(model, scenes[0], PARAMS) is model  # older than the ring: stays out
    shuffled = scenes[:]
    random.Random(1).shuffle(shuffled)
    again = build_model(shuffled + scenes, "test", PARAMS)
    assert again.revision == model.revision
    assert [e.key for e in again.entries] == [e.key for e in model.entries]
    assert again.evicted_through == model.evicted_through


def test_ring_keeps_the_newest_and_remembers_what_fell_out() -> None:
    model = build_model([scene(d) for d in range(12)], "test", PARAMS)
    assert [e.key for e in model.entries] == [f"sim/s{d:02d}" for d in range(4, 12)]
    assert model.evicted_through == DAY0 + timedelta(days=3)
    # a late scene older than everything kept falls out at once and changes nothing
    assert merge_scene(model, scene(2), PARAMS) is model
    # a late one between the last evicted and the oldest kept falls out too, but is remembered
    s = scene(3)
    late = SceneProfiles("sim/s03b", s.acquired + timedelta(hours=12), 1.0, 0.9, s.profiles)
    moved = merge_scene(model, late, PARAMS)
    assert moved.keys == model.keys and moved.evicted_through == late.acquired


def test_cloudy_or_misregistered_scenes_are_not_added() -> None:
    model = build_model([scene(1)], "test", PARAMS)
    assert merge_scene(model, scene(2, valid_fraction=0.3), PARAMS) is model
    assert merge_scene(model, scene(3, confidence=0.1), PARAMS) is model
    assert len(merge_scene(model, scene(4), PARAMS).entries) == 2


def test_background_at_t_ignores_later_scenes_and_matches_the_median() -> None:
    scenes = [scene(d) for d in range(1, 8)]
    model = build_model(scenes, "test", PARAMS)
    bg = background_at(model, DAY0 + timedelta(days=5), PARAMS)  # days 1-4 only
    assert bg.profiles is not None and bg.scenes == tuple(f"sim/s{d:02d}" for d in range(1, 5))
    assert np.allclose(bg.profiles["a"].values, 2.5)
    # a scene added later (even a wild one, acquired after T) does not change it
    later = merge_scene(model, scene(6, level=1000.0), PARAMS)  # key exists: no-op
    later = merge_scene(later, scene(9, level=1000.0), PARAMS)
    assert background_at(later, DAY0 + timedelta(days=5), PARAMS).digest == bg.digest
    # the same as the core's median over the stored profiles
    expect = background_from_history([s.profiles for s in scenes[:4]], min_scenes=3)
    assert expect is not None and np.array_equal(bg.profiles["b"].values, expect["b"].values)
    # too little history before T: no background (the caller uses the reference)
    early = background_at(model, DAY0 + timedelta(days=3), PARAMS)
    assert early.profiles is None and early.digest == "reference"


def test_window_is_bounded_and_evicted_history_is_reported() -> None:
    model = build_model([scene(d) for d in range(20)], "test", PARAMS)
    newest = background_at(model, DAY0 + timedelta(days=30), PARAMS)
    assert newest.scenes == tuple(f"sim/s{d:02d}" for d in range(14, 20))  # the last 6
    assert covers(model, DAY0 + timedelta(days=18), PARAMS)  # 6 kept scenes before it
    assert not covers(model, DAY0 + timedelta(days=15), PARAMS)  # needs evicted scenes
    with pytest.raises(ValueError, match="no longer holds"):
        background_at(model, DAY0 + timedelta(days=15), PARAMS)


def test_track_mismatch_is_an_error() -> None:
    model = build_model([scene(1)], "test", PARAMS)
    odd = scene(2)
    odd = SceneProfiles(odd.key, odd.acquired, 1.0, 0.9, {"a": odd.profiles["a"]})
    with pytest.raises(ValueError, match="tracks do not match"):
        merge_scene(model, odd, PARAMS)


def test_background_of_takes_every_scene_the_model_holds_whenever_acquired() -> None:
    model = build_model([scene(d) for d in (3, 4, 6, 9)], "test", PARAMS)
    bg = background_of(model, PARAMS)
    assert bg.profiles is not None and bg.scenes == ("sim/s03", "sim/s04", "sim/s06", "sim/s09")
    assert np.allclose(bg.profiles["a"].values, 5.0)
    assert background_of(build_model([scene(3), scene(4)], "test", PARAMS), PARAMS).profiles is None
    with pytest.raises(ValueError, match="early_scenes >= min_scenes"):
        BackgroundParams(min_scenes=5, early_scenes=4)
