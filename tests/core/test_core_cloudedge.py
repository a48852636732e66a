"""Clouds never add cars: the penumbra a usable-data mask leaves outside its edge is not a car."""

from __future__ import annotations

import numpy as np

from railwatch.core.cloudedge import cloud_edge_mask
from railwatch.core.measure import measure_scene
from railwatch.core.occupancy import score_tracks
from railwatch.core.types import DetectorParams, TrackProfile

BALLAST = np.array([1100.0, 1200.0, 1300.0, 1700.0], dtype=np.float32)
GSD, PITCH = 3.0, 14.5


def _yard(change: np.ndarray, start: int, stop: int, seed: int = 7
          ) -> tuple[dict[str, TrackProfile], dict[str, TrackProfile]]:
    """Two far-apart 600 m tracks sampled every metre: t1 with `change` (per band, a fraction of
    the ballast) over samples start:stop and a cloud masked over 300:380 just after; t2 plain
    (the yard's noise level comes from both)."""
    rng = np.random.default_rng(seed)
    n = 600
    out, backgrounds = {}, {}
    for k in ("t1", "t2"):
        values = (BALLAST * (1 + rng.normal(0, 0.006, (n, 4)))).astype(np.float32)
        valid = np.ones(n, dtype=bool)
        if k == "t1":
            values[start:stop] *= (1 + change).astype(np.float32)
            valid[300:380] = False
            values[300:380] = np.nan
        out[k] = TrackProfile(k, 1.0, values, valid)
        backgrounds[k] = TrackProfile(k, 1.0, np.tile(BALLAST, (n, 1)), np.ones(n, dtype=bool))
    return out, backgrounds


def test_a_penumbra_beside_the_mask_is_no_car() -> None:
    penumbra = np.array([-0.07, -0.08, -0.08, -0.09])  # a cloud shadow's faint edge
    profiles, background = _yard(penumbra, 275, 300)
    p = DetectorParams()
    off = measure_scene(profiles, background, GSD, PITCH, params=DetectorParams(cloud_edge_m=0.0))
    assert off.cars >= 1  # without the rule the penumbra reads as a car: the test can fail
    m = measure_scene(profiles, background, GSD, PITCH, params=p)
    assert m.cars == 0 and m.occupied_m == 0.0
    assert m.cars_high >= 1  # what the cloud hides may still hold cars


def test_a_car_beside_the_mask_still_counts() -> None:
    car = np.array([-0.45, -0.3, 0.1, 0.25])  # a coloured roof: uneven, strong
    profiles, background = _yard(car, 270, 300)
    m = measure_scene(profiles, background, GSD, PITCH)
    assert 1 <= m.cars <= 3 and m.occupied_m >= 20.0


def test_the_same_penumbra_far_from_any_cloud_is_not_explained() -> None:
    """Away from the mask a weak, even change is left to the car model (a grey car)."""
    penumbra = np.array([-0.07, -0.08, -0.08, -0.09])
    profiles, background = _yard(penumbra, 100, 125)
    p = DetectorParams()
    scores, _ = score_tracks(profiles, background, p)
    assert not cloud_edge_mask(scores, profiles, GSD, p)["t1"][100:125].any()
    near, _ = score_tracks(*_yard(penumbra, 275, 300), p)
    assert cloud_edge_mask(near, _yard(penumbra, 275, 300)[0], GSD, p)["t1"][280:295].all()


def _sidings(changes: dict[str, np.ndarray], start: int, stop: int, seed: int = 3
             ) -> tuple[dict[str, TrackProfile], dict[str, TrackProfile]]:
    """Four parallel 600 m sidings 5.3 m apart, sampled every metre, nothing masked anywhere;
    siding k changed by `changes[k]` (per band, a fraction of the ballast) over start:stop."""
    rng = np.random.default_rng(seed)
    n = 600
    out, backgrounds = {}, {}
    for i, k in enumerate(("t1", "t2", "t3", "t4")):
        positions = np.column_stack([np.arange(n) / GSD, np.full(n, 100.0 + i * 5.3 / GSD)])
        values = (BALLAST * (1 + rng.normal(0, 0.006, (n, 4)))).astype(np.float32)
        if k in changes:
            values[start:stop] *= (1 + changes[k]).astype(np.float32)
        valid = np.ones(n, dtype=bool)
        out[k] = TrackProfile(k, 1.0, values, valid, positions)
        backgrounds[k] = TrackProfile(k, 1.0, np.tile(BALLAST, (n, 1)), valid, positions)
    return out, backgrounds


GREY = np.array([-0.07, -0.08, -0.08, -0.09])  # a faint, even darkening


def test_a_faint_cloud_shadow_no_mask_flagged_is_no_car() -> None:
    """Darker by 8 % on the outer siding, fading to 1 % three sidings on (as measured on the
    3 m bench's cloudy #8): a cloud shadow's edge the mask missed. Without the rule it reads as
    cars: the test can fail."""
    shade = {"t1": GREY, "t2": 0.75 * GREY, "t3": 0.45 * GREY, "t4": 0.15 * GREY}
    profiles, background = _sidings(shade, 100, 130)
    off = measure_scene(profiles, background, GSD, PITCH, params=DetectorParams(cloud_far_share=0.0))
    assert off.cars >= 1
    m = measure_scene(profiles, background, GSD, PITCH)
    assert m.cars == 0


def test_a_grey_car_and_its_neighbour_are_still_cars() -> None:
    """The same weak grey change on one siding only, or on it and the next one (a leak, a
    shallow shadow, or two grey cars side by side): no track two sidings away changed alike."""
    for changes in ({"t1": GREY}, {"t1": GREY, "t2": GREY}):
        profiles, background = _sidings(changes, 100, 130)
        m = measure_scene(profiles, background, GSD, PITCH)
        assert {t.track_id for t in m.tracks if t.cars >= 1} >= set(changes), changes


def test_unmasked_shadows_are_not_looked_for_without_a_reference() -> None:
    shade = {"t1": GREY, "t2": 0.6 * GREY, "t3": 0.35 * GREY}
    profiles, background = _sidings(shade, 100, 130)
    p = DetectorParams()
    scores, _ = score_tracks(profiles, background, p)
    assert cloud_edge_mask(scores, profiles, GSD, p)["t1"][105:125].all()
    assert not cloud_edge_mask(scores, profiles, GSD, p, unmasked_shadows=False)["t1"].any()
