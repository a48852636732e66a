"""Where car shadows fall is geometry: the sun's azimuth and elevation and the track layout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from railwatch.core.neighbours import Shadow, explained_mask, scene_shadow
from railwatch.core.occupancy import TrackScore
from railwatch.core.shadowgeom import _blurred_covers, cast_links, casting, full_shadow_darkening
from railwatch.core.tracklinks import links
from railwatch.core.types import DetectorParams

BALLAST = np.array([1100.0, 1200.0, 1300.0, 1700.0])
GSD = 3.0
SPACING_M = 5.3


def _yard(diffs: list[np.ndarray], z: list[np.ndarray], gsd_m: float = GSD, step_m: float = 1.0
          ) -> dict[str, TrackScore]:
    """East-west sidings 5.3 m apart, t1 northernmost, sampled every `step_m` on a 3 m grid
    (or `gsd_m`)."""
    out = {}
    for i, (d, zz) in enumerate(zip(diffs, z, strict=True)):
        n = d.shape[0]
        positions = np.column_stack([np.arange(n) * step_m / gsd_m, np.full(n, i * SPACING_M / gsd_m)])
        out[f"t{i + 1}"] = TrackScore(f"t{i + 1}", step_m, np.ones(n, dtype=bool), d, zz, positions,
                                      np.tile(BALLAST, (n, 1)))
    return out


def _quiet(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 4)), np.zeros(n)


def test_coverage_follows_the_sun() -> None:
    n = 120
    scores = _yard([_quiet(n)[0]] * 3, [_quiet(n)[1]] * 3)
    wide = links(scores, GSD, DetectorParams(neighbour_max_m=16.0))
    south = np.array([0.0, 1.0])  # sun in the north (pixel rows grow southwards)
    p = DetectorParams(shadow_blur_px=0.0)  # the geometric shadow, edges sharp
    low = cast_links(scores, wide, south, 20.0, GSD, p)
    by = {(k, c.link.other): c for k, found in low.items() for c in found}
    assert np.median(by[("t2", "t1")].low) > 0.9  # the next siding: fully shaded
    assert 0.2 < np.median(by[("t3", "t1")].high) <= 1.0  # the one beyond: in part
    assert ("t1", "t2") not in by  # the sun side is never shaded
    high = cast_links(scores, wide, south, 65.0, GSD, p)
    by_high = {(k, c.link.other): c for k, found in high.items() for c in found}
    assert ("t3", "t1") not in by_high  # a summer sun's shadow stops short of the second siding
    assert np.median(by_high[("t2", "t1")].high) < 0.5
    # a blurred edge spreads a shadow's darkening past its geometric edge; it adds none: a
    # summer shadow that ends inside the next siding's sample still covers less than half of it
    # (adding the blur to the shadow's length made that 0.94 and let t1's shadow explain a
    # train on t2), and a winter shadow still covers the next siding fully
    blurred = cast_links(scores, wide, south, 65.0, GSD, DetectorParams(shadow_blur_px=1.0))
    by_blur = {(k, c.link.other): c for k, found in blurred.items() for c in found}
    assert np.median(by_blur[("t2", "t1")].high) > np.median(by_high[("t2", "t1")].high)
    assert np.median(by_blur[("t2", "t1")].high) < 0.5
    assert np.median(by_blur[("t2", "t1")].low) > np.median(by_high[("t2", "t1")].low)
    winter = cast_links(scores, wide, south, 20.0, GSD, DetectorParams(shadow_blur_px=1.0))
    by_winter = {(k, c.link.other): c for k, found in winter.items() for c in found}
    assert np.median(by_winter[("t2", "t1")].low) > 0.8
    assert np.median(by_winter[("t3", "t1")].high) > np.median(by[("t3", "t1")].high) * 0.5


def test_a_blurred_shadow_keeps_its_darkening() -> None:
    """Across a window wider than the shadow and its blur, the blurred cover adds up to the
    shadow's own width: the blur moves darkening, it makes none."""
    centres = np.linspace(-20.0, 30.0, 201)[:-1] + 0.125  # 0.25 m windows, end to end
    near, shadow = np.ones(200, dtype=bool), np.full((1, 200), 5.0)  # ground 1.6 .. 5.0 m
    cover = _blurred_covers(centres, near, 0.125, 1.6, shadow, 3.0)[0] * 0.25
    assert abs(cover.sum() - 3.4) < 1e-6
    sharp = _blurred_covers(centres, near, 0.125, 1.6, shadow, 0.0)[0] * 0.25
    assert abs(sharp.sum() - 3.4) < 1e-9 and cover.max() < sharp.max()


def test_casting_looks_back_along_the_track() -> None:
    closed = np.zeros(50, dtype=bool)
    closed[10:20] = True
    j = np.arange(50)
    seen = casting(closed, np.arange(0, 4))[j]  # shadow lands up to 3 samples further on
    assert seen[10:23].all() and not seen[:10].any() and not seen[23:].any()


@pytest.mark.parametrize("seed", range(4))
def test_casting_is_a_lookup_at_every_offset(seed: int) -> None:
    """Backwards and forwards, past either end (clamped): as looking each offset up."""
    rng = np.random.default_rng(seed)
    closed = rng.random(60) < 0.15
    for first in range(-6, 5):
        offsets = np.arange(first, first + int(rng.integers(1, 6)))
        expected = [closed[np.clip(i - offsets, 0, 59)].any() for i in range(60)]
        np.testing.assert_array_equal(casting(closed, offsets), expected)


def test_a_full_winter_shadow_is_not_counted_as_a_train() -> None:
    """t1 (north) holds a train; a low sun from the south shades t2 fully and t3 in part with
    the same darkening spectrum: with the sun known, only t1 is a train. With a high sun the
    same darkening on t2 cannot be t1's shadow and stays evidence of a car."""
    n = 200
    rng = np.random.default_rng(3)
    car = np.zeros((n, 4))
    car[40:160] = [-500.0, -650.0, -250.0, -850.0]
    shade = np.array([0.58, 0.64, 0.68, 0.72])  # skylight is blue: shadows keep more blue
    full = np.zeros((n, 4))
    full[40:160] = -0.55 * shade * BALLAST
    part = np.zeros((n, 4))
    part[40:160] = -0.2 * shade * BALLAST
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (car, full, part)]
    z = [np.where(np.abs(d).sum(axis=1) > 300, 20.0, 0.0) for d in diffs]
    scores = _yard(diffs, z)
    p = DetectorParams()
    inv = np.eye(4) / 30.0**2
    # rows grow southwards and t1 is row 0: a sun in the north shades t2, then t3
    shadow = scene_shadow(scores, GSD, p, 0.0)
    assert shadow is not None
    low = explained_mask(scores, inv, GSD, p, shadow, 18.0)
    assert not low["t1"][40:160].any()  # the train stays
    assert low["t2"][50:150].all() and low["t3"][50:150].all()  # its shadows are explained
    high = explained_mask(scores, inv, GSD, p, shadow, 65.0)
    assert high["t2"][50:150].mean() < 0.05  # a summer shadow cannot darken t2 that much: a car


def test_the_blurred_edge_of_a_full_shadow_needs_no_car_of_its_own() -> None:
    """A tall car's shadow at 40° covers the next siding (t2) and stops short of t3 by geometry,
    but optics and the profile's interpolation spread its edge: t3 darkens a little too. That
    darkening must not make t2 a car (whose shadow would explain it): it is the same shadow."""
    n = 200
    rng = np.random.default_rng(5)
    shade = np.array([0.58, 0.64, 0.68, 0.72])
    car = np.zeros((n, 4))
    car[40:160] = [-500.0, -650.0, -250.0, -850.0]
    full = np.zeros((n, 4))
    full[40:160] = -0.45 * shade * BALLAST
    edge = np.zeros((n, 4))
    edge[40:160] = -0.1 * shade * BALLAST
    # t4 beyond stays bright: a car on t3 would have to shade it, so t3 is no car either
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (car, full, edge, np.zeros((n, 4)))]
    z = [np.where(np.abs(d).sum(axis=1) > 300, 20.0, 0.0) for d in diffs]
    scores = _yard(diffs, z)
    inv = np.eye(4) / 30.0**2
    sharp = DetectorParams(shadow_blur_px=0.0)
    shadow = scene_shadow(scores, GSD, sharp, 0.0)
    assert shadow is not None
    # a shadow with a knife edge leaves t3's darkening to a caster on t2
    assert explained_mask(scores, inv, GSD, sharp, shadow, 40.0)["t2"][50:150].mean() < 0.5
    blurred = explained_mask(scores, inv, GSD, DetectorParams(), shadow, 40.0)
    assert not blurred["t1"][40:160].any()  # the train stays
    assert blurred["t2"][50:150].all()  # its shadow is explained, blurred edge and all


def test_a_gondolas_shorter_shadow_is_still_a_shadow() -> None:
    """0.5 m, a 44° sun in the north: t1 holds box cars (4.6 m) on its first half and gondolas
    (2.9 m) on its second. The box cars' shadow covers t2's corridor almost whole, the
    gondolas' a sixth of it: both darkenings on t2 are shadows, t1 is the only train. Bounded
    below by the usual cars' shadow (3.5 m, as before detector 0.4.24), the gondolas' was too
    faint for a shadow and became a train on t2 (0.5 m bench, clear #5: 5 cars on an empty
    siding)."""
    gsd, step, n, elevation = 0.5, 0.5, 400, 44.0
    south = np.array([0.0, 1.0])
    empty = _yard([np.zeros((n, 4))] * 2, [np.zeros(n)] * 2, gsd, step)
    wide = links(empty, gsd, DetectorParams(neighbour_max_m=16.0))

    def cover(height: float) -> float:
        one = DetectorParams(car_least_height_m=height, car_min_height_m=height, car_max_height_m=height)
        return float(np.median(cast_links(empty, wide, south, elevation, gsd, one)["t2"][0].high))

    box, gondola = cover(4.6), cover(2.9)
    assert box > 0.8 and gondola < 0.25
    shade = np.array([0.58, 0.64, 0.68, 0.72])
    rng = np.random.default_rng(11)
    train = np.zeros((n, 4))
    train[40:180] = [-500.0, -650.0, -250.0, -850.0]
    train[220:360] = [-450.0, -600.0, -300.0, -800.0]
    shaded = np.zeros((n, 4))
    shaded[40:180] = -box * shade * BALLAST
    shaded[220:360] = -gondola * shade * BALLAST
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (train, shaded)]
    z = [np.where(np.abs(d).sum(axis=1) > 150, 20.0, 0.0) for d in diffs]
    scores = _yard(diffs, z, gsd, step)
    inv = np.eye(4) / 10.0**2
    p = DetectorParams(neighbour_max_bleed=0.0)  # 0.5 m: pixels do not mix sidings
    shadow = scene_shadow(scores, gsd, p, 0.0)
    assert shadow is not None
    m = explained_mask(scores, inv, gsd, p, shadow, elevation)
    assert not m["t1"][40:360].any()  # the train stays
    assert m["t2"][50:170].all() and m["t2"][230:350].all()  # both shadows are explained
    usual = replace(p, car_least_height_m=p.car_min_height_m)
    assert not explained_mask(scores, inv, gsd, usual, shadow, elevation)["t2"][230:350].any()


def test_an_oblique_suns_shadow_still_teaches_its_depth() -> None:
    """0.5 m, a 44° sun 27° off the across-track direction: the usual car's shadow covers a
    little over a quarter of the next siding, the tallest's three quarters. The full shadow's
    depth is still learnt from there; required to cover 0.3, nothing was, and the scene lost
    its geometric shadow model (a gondola's faint shadow became a car: 0.5 m bench, cloudy #8)."""
    gsd, step, n, elevation = 0.5, 0.5, 400, 44.0
    towards = np.array([np.sin(np.deg2rad(27.0)), np.cos(np.deg2rad(27.0))])
    p = DetectorParams()
    shade = np.array([0.58, 0.64, 0.68, 0.72])
    empty = _yard([np.zeros((n, 4))] * 2, [np.zeros(n)] * 2, gsd, step)
    (c,) = cast_links(empty, links(empty, gsd, replace(p, neighbour_max_m=16.0)), towards,
                      elevation, gsd, p)["t2"]
    low, high = float(np.median(c.low[c.link.near])), float(np.median(c.high[c.link.near]))
    assert 0.2 < low < 0.3 < high
    rng = np.random.default_rng(3)
    train = np.zeros((n, 4))
    train[40:360] = [-500.0, -650.0, -250.0, -850.0]
    shaded = np.zeros((n, 4))
    shaded[40:360] = -0.5 * (low + high) * shade * BALLAST  # a train of cars of every height
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (train, shaded)]
    scores = _yard(diffs, [np.where(np.abs(d).sum(axis=1) > 150, 20.0, 0.0) for d in diffs],
                   gsd, step)
    found = cast_links(scores, links(scores, gsd, replace(p, neighbour_max_m=16.0)), towards,
                       elevation, gsd, p)
    learnt = full_shadow_darkening(scores, found, p)
    assert learnt is not None and np.allclose(learnt, shade, rtol=0.05)
    assert full_shadow_darkening(scores, found, replace(p, full_shadow_min_cover=0.3)) is None


@pytest.mark.parametrize("elevation", [None, 30.0, 60.0])
@pytest.mark.parametrize("bleed", [0.0, 0.5])  # 0.5 m imagery: pixels do not mix sidings
def test_a_train_on_the_sun_side_is_no_shadow_of_its_neighbour(
    elevation: float | None, bleed: float
) -> None:
    """A white train on t1 (north), a dark one on t2 with the sun in the south: t1 cannot shade
    t2, so no reversed leak of t1's change (the stand-in for shadows the model does not place)
    may explain t2's darkening away. It did: 0.5 m bench, dense #2, a 12-car train lost."""
    n = 200
    rng = np.random.default_rng(7)
    white = np.zeros((n, 4))
    white[40:160] = 3.0 * BALLAST
    dark = np.zeros((n, 4))
    dark[40:160] = -0.3 * BALLAST * np.array([1.0, 0.9, 0.8, 0.7])
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (white, dark)]
    z = [np.where(np.abs(d).sum(axis=1) > 300, 20.0, 0.0) for d in diffs]
    scores = _yard(diffs, z)
    north = np.array([0.0, -1.0])  # shadows fall north, from t2 towards t1
    shadow = Shadow(north, np.array([0.5, 0.55, 0.6, 0.65]))
    m = explained_mask(scores, np.eye(4) / 30.0**2, GSD, DetectorParams(neighbour_max_bleed=bleed),
                       shadow, elevation)
    assert not m["t1"][40:160].any() and not m["t2"][40:160].any()


def test_a_sample_under_two_shadows_is_in_shadow_once() -> None:
    """A low sun: t2's shadow covers t3 fully and t1's, from two sidings away, in part. t3 is
    in shadow once: divided by t1's partial coverage alone, its darkening read as a shadow half
    again as dark as the scene's (3 m dense #7 learnt 0.95 of the light taken for 0.6)."""
    n = 200
    rng = np.random.default_rng(9)
    full = np.array([0.58, 0.64, 0.68, 0.72])  # the light a full shadow takes away
    bright = np.zeros((n, 4))
    bright[20:180] = [900.0, 1000.0, 1100.0, 1300.0]  # cars unlike shadows, on t1 and t2
    t3 = np.zeros((n, 4))
    t3[20:180] = -0.92 * full * BALLAST
    diffs = [d + rng.normal(0, 8.0, (n, 4)) for d in (bright, bright, t3, np.zeros((n, 4)))]
    z = [np.where(np.abs(d).sum(axis=1) > 300, 20.0, 0.0) for d in diffs]
    scores = _yard(diffs, z)
    south = np.array([0.0, 1.0])
    p = DetectorParams()
    wide = links(scores, GSD, DetectorParams(neighbour_max_m=16.0))
    cast = cast_links(scores, wide, south, 23.0, GSD, p)
    by = {(k, c.link.other): c for k, found in cast.items() for c in found}
    assert np.median(by[("t3", "t2")].low) > 0.85 and np.median(by[("t3", "t1")].high) < 0.9
    learnt = full_shadow_darkening(scores, cast, p)
    assert learnt is not None
    np.testing.assert_allclose(learnt, full, rtol=0.15)
