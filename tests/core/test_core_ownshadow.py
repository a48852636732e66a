"""A car's own shadow beside its track (resolved cars): the strips are sampled where they
should be, and a shadow in the anti-sun strip over an unchanged centreline is a car."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from railwatch.adapters.profiles import decode_model, decode_profiles, encode_model, encode_profiles
from railwatch.core import Alignment, DetectorParams, TrackLine, TrackProfile, extract_profiles
from railwatch.core.background import BackgroundParams, SceneProfiles, background_at, build_model
from railwatch.core.ownshadow import own_shadows
from railwatch.core.resolved import minus

GSD = 0.5
P = DetectorParams()


def test_side_strips_are_sampled_either_side_of_the_centreline_where_cars_are_resolved() -> None:
    rows, cols = np.mgrid[0:80, 0:200].astype(np.float32)
    image = np.stack([cols, rows, np.full_like(cols, 100.0)])
    line = TrackLine("a", (np.array([[20.0, 40.5], [180.0, 40.5]]),))  # along +col: normal +row
    prof = extract_profiles(image, np.ones((80, 200), bool), [line], GSD)["a"]
    assert prof.sides.shape == (len(prof.valid), 2, 3)
    d = P.side_strip_m / GSD
    # a pixel's value sits at its centre: the strip's row coordinate minus 0.5
    np.testing.assert_allclose(prof.sides[:, 0, 1], 40.0 - d, atol=1e-4)
    np.testing.assert_allclose(prof.sides[:, 1, 1], 40.0 + d, atol=1e-4)
    np.testing.assert_allclose(prof.sides[:, 0, 0], prof.values[:, 0], atol=1e-4)
    # at 3 m a car's shadow is not apart from its track: no strips
    coarse = extract_profiles(image, np.ones((80, 200), bool), [line], 3.0)["a"]
    assert coarse.sides.shape[0] == 0


def profile(centre: np.ndarray, north: np.ndarray, south: np.ndarray) -> TrackProfile:
    """An east-west track (normal +row, i.e. south) sampled every 0.5 m, 4 bands."""
    n = len(centre)
    positions = np.column_stack([np.arange(n) + 0.5, np.full(n, 50.0)])
    values = np.repeat(centre[:, None], 4, axis=1).astype(np.float32)
    sides = np.stack([np.repeat(north[:, None], 4, axis=1), np.repeat(south[:, None], 4, axis=1)],
                     axis=1).astype(np.float32)
    return TrackProfile("t", GSD, values, np.ones(n, bool), positions, np.ones(n, bool), sides)


def case(centre_dark: float, north_dark: float, south_dark: float) -> TrackProfile:
    """Ballast at 1000 DN; from 100 to 160 m the centreline, the north and the south strips
    lose these shares of it."""
    n = 600
    along = (np.arange(n) + 0.5) * GSD
    car = (along >= 100) & (along < 160)
    base = np.full(n, 1000.0)
    return profile(*(np.where(car, 1000 * (1 - dark), base)
                     for dark in (centre_dark, north_dark, south_dark)))


EMPTY = case(0.0, 0.0, 0.0)


@pytest.mark.parametrize(("azimuth", "elevation", "darks", "found"), [
    # a grey roof like the ballast, its shadow on the north side of a southern sun: a car
    (180.0, 30.0, (0.02, 0.55, 0.0), [(100.0, 160.0)]),
    # the same darkening on the sun's side of the track is no shadow of a car on it
    (0.0, 30.0, (0.02, 0.55, 0.0), []),
    # a shadow across the whole track (the centreline too) has its caster elsewhere
    (180.0, 30.0, (0.5, 0.55, 0.0), []),
    # too faint to be a shadow
    (180.0, 30.0, (0.0, 0.1, 0.0), []),
    # a high sun's shadow does not reach the strip
    (180.0, 80.0, (0.02, 0.55, 0.0), []),
    # the sun along the track: its shadows fall along it, not beside
    (90.0, 30.0, (0.02, 0.55, 0.0), []),
])
def test_own_shadow_is_a_car_only_in_the_anti_sun_strip_over_an_unchanged_centreline(
        azimuth: float, elevation: float, darks: tuple[float, float, float],
        found: list[tuple[float, float]]) -> None:
    got = own_shadows({"t": case(*darks)}, {"t": EMPTY}, 14.0, P, azimuth, elevation).cars
    assert got.get("t", []) == pytest.approx(found)


def test_no_sun_or_no_strips_no_own_shadow() -> None:
    scene = case(0.02, 0.55, 0.0)
    for sun in ((None, None), (180.0, -3.0)):
        found = own_shadows({"t": scene}, {"t": EMPTY}, 14.0, P, *sun)
        assert found.cars == found.none == {}
    bare = TrackProfile("t", GSD, EMPTY.values, EMPTY.valid, EMPTY.positions, EMPTY.covered)
    found = own_shadows({"t": scene}, {"t": bare}, 14.0, P, 180.0, 30.0)
    assert found.cars == found.none == {}


@pytest.mark.parametrize(("elevation", "darks", "none"), [
    # a low sun: even a flat car's shadow would darken the anti-sun strip; lit there, no car
    # (a neighbour's shadow over the centreline and the sun-side strip stops short of it)
    (30.0, (0.55, 0.0, 0.55), [(100.0, 160.0)]),
    # ... but a shaded strip says nothing against a car
    (30.0, (0.55, 0.55, 0.55), []),
    # a high sun: a low car's shadow may end before the strip
    (70.0, (0.55, 0.0, 0.55), []),
])
def test_a_lit_anti_sun_strip_rules_out_a_car_where_its_shadow_must_fall(
        elevation: float, darks: tuple[float, float, float], none: list[tuple[float, float]]) -> None:
    found = own_shadows({"t": case(*darks)}, {"t": EMPTY}, 14.0, P, 180.0, elevation)
    lit = [(a, b) for a, b in found.none.get("t", []) if b > 100 and a < 160]  # the stretch's
    assert [(max(a, 100.0), min(b, 160.0)) for a, b in lit] == pytest.approx(none)


def test_a_strip_shaded_in_the_background_rules_nothing_out() -> None:
    """A train parked in most of the background's scenes leaves its shadow in the background's
    strip: a car standing there now darkens it no further, and is not ruled out."""
    parked = case(0.0, 0.55, 0.0)  # the background: the strip shaded from 100 to 160 m
    found = own_shadows({"t": case(0.0, 0.55, 0.0)}, {"t": parked}, 14.0, P, 180.0, 30.0)
    assert all(b <= 100 or a >= 160 for a, b in found.none.get("t", []))
    assert found.none["t"]  # the open ground around it is lit, as it should be


def test_minus_cuts_stretches_out_of_segments_and_drops_the_crumbs() -> None:
    assert minus([(0.0, 100.0), (120.0, 130.0)], [(40.0, 60.0), (95.0, 125.0)], 7.0) == [
        (0.0, 40.0), (60.0, 95.0)]
    assert minus([(0.0, 50.0)], [], 7.0) == [(0.0, 50.0)]


def test_strips_go_through_stored_profiles_the_model_and_the_history_median() -> None:
    """The pipeline's background of a scene is the median of earlier scenes' stored profiles:
    the strips beside the tracks travel with them, their median taken like the centreline's."""
    params = BackgroundParams(window=6, capacity=6, min_scenes=5)
    rng = np.random.default_rng(3)
    day0 = datetime(2023, 9, 1, tzinfo=UTC)
    scenes = []
    for day in range(6):
        scene = case(0.0, 0.0, 0.0)
        sides = (scene.sides + rng.normal(0, 5, scene.sides.shape)).astype(np.float32)
        sides[day * 10 : day * 10 + 10, 0] = np.nan  # each day's own gap in the north strip
        scene = TrackProfile("t", GSD, scene.values, scene.valid, scene.positions, scene.covered, sides)
        stored, _ = decode_profiles(encode_profiles({"t": scene}, Alignment.identity(4)))
        np.testing.assert_array_equal(stored["t"].sides, sides)
        scenes.append(SceneProfiles(f"sim/{day}", day0 + timedelta(days=day), 1.0, 1.0, stored))
    model = decode_model(encode_model(build_model(scenes, "test", params)))
    profiles = background_at(model, day0 + timedelta(days=7), params).profiles
    assert profiles is not None
    expected = np.nanmedian(np.stack([s.profiles["t"].sides for s in scenes]), axis=0)
    np.testing.assert_allclose(profiles["t"].sides, expected, rtol=1e-6)
    # profiles stored before the strips were sampled give a background without them
    bare = TrackProfile("t", GSD, EMPTY.values, EMPTY.valid, EMPTY.positions, EMPTY.covered)
    old = build_model([SceneProfiles(f"sim/{d}", day0 + timedelta(days=d), 1.0, 1.0, {"t": bare})
                       for d in range(6)], "test", params)
    old_profiles = background_at(decode_model(encode_model(old)), day0 + timedelta(days=7), params).profiles
    assert old_profiles is not None and old_profiles["t"].sides.shape[0] == 0
