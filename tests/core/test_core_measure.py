"""Occupancy, counts, intervals and flags on synthetic 3 m scenes with known trains."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.core import (
    DetectorParams,
    SceneMeasurement,
    detect_image,
    extract_profiles,
    measure_scene,
)

from .conftest import Scene, make_scene
from .synth import GSD_M, PITCH_M, Train, Yard


def by_id(m: SceneMeasurement) -> dict[str, object]:
    return {t.track_id: t for t in m.tracks}


def assert_track_close(scene: Scene, m: SceneMeasurement) -> None:
    """Loaded tracks within one car pitch (or 10 %) of the truth; empty tracks empty."""
    for t in m.tracks:
        true = scene.truth[t.track_id]
        tol = max(PITCH_M, 0.1 * true["occupied_m"])
        assert abs(t.occupied_m - true["occupied_m"]) <= tol, (t.track_id, t.occupied_m, true)
        assert t.cars_low <= true["cars"] <= t.cars_high, (t.track_id, t, true)


def test_main_scene_with_reference(main_scene: Scene) -> None:
    s = main_scene
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    assert_track_close(s, m)
    tracks = by_id(m)
    # t5 is empty but lies in the shadow of t4's train; t3 is empty where t2's train shades it
    assert tracks["t5"].occupied_m < 0.5 * PITCH_M
    t3 = tracks["t3"].segments
    assert all(start > 194.0 for start, _ in t3), t3
    # segments land where the trains stand (the reference is misregistered by (0.2, -0.15) px,
    # about 0.6 m along these tracks, and ends are known to about a pixel)
    (start, end), = tracks["t2"].segments
    assert abs(start - 50.0) < 3.0 and abs(end - 194.0) < 3.0
    true_cars = sum(t["cars"] for t in s.truth.values())
    assert m.cars_low <= true_cars <= m.cars_high
    assert abs(m.cars - true_cars) <= 2
    assert m.flags == ()
    # the shift applied is the reference's displacement minus the image's, in metres
    assert m.shift_m == pytest.approx(((0.2 - 1.3) * GSD_M, (-0.15 + 0.8) * GSD_M), abs=0.9)
    assert m.valid_fraction > 0.97


def test_adjacent_loaded_tracks_both_count(yard: Yard, reference) -> None:
    trains = (Train(1, 40.0, 12, "dark"), Train(2, 70.0, 10, "rust"), Train(3, 60.0, 8, "dark"))
    s = make_scene(yard, reference, trains, shift_px=(-0.7, 0.4), seed=21)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    assert_track_close(s, m)
    # t5 is in t4's shadow, t1 is on the sunny side of t2
    assert by_id(m)["t5"].occupied_m < 0.5 * PITCH_M
    assert by_id(m)["t1"].occupied_m < 0.5 * PITCH_M


def test_a_train_beside_a_train_keeps_its_middle(yard: Yard, reference) -> None:
    """A dark cut of 8 cars on t2 beside a 12-car rust train on t3, the sun known: the middle
    of the cut, which the neighbour model explains away as the rust train's leak, lies between
    two stretches of the cut that stand on their own, so it is cars (trains stand coupled);
    without that rule 6 of the 8 were counted."""
    trains = (Train(1, 40.0 + PITCH_M, 8, "dark"), Train(2, 40.0, 12, "rust"))
    s = make_scene(yard, reference, trains, seed=33)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid,
                     sun_azimuth_deg=153.0, sun_elevation_deg=42.0)
    tracks = by_id(m)
    assert [tracks[f"t{k}"].cars for k in range(1, 6)] == [0, 8, 12, 0, 0], m.tracks


def test_empty_yard_is_empty(yard: Yard, reference) -> None:
    s = make_scene(yard, reference, (), shift_px=(2.2, 1.1), gain=1.05, offset=-60.0, seed=22)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    assert m.occupied_m < 0.5 * PITCH_M
    assert m.cars == 0 and m.cars_low == 0


def test_cloud_over_cars_is_not_counted(yard: Yard, reference) -> None:
    trains = (Train(1, 50.0, 16, "dark"),)  # 50-281 m on t2
    x, y = yard.point(1, 160.0)
    s = make_scene(yard, reference, trains, cloud=(x, y, 60.0), seed=23)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    t2 = by_id(m)["t2"]
    assert t2.valid_fraction < 0.8
    assert m.valid_fraction < 0.85
    # the masked stretch (about 160 ± 63 m) holds no occupied metre
    for start, end in t2.segments:
        assert end <= 97.0 + 3.0 or start >= 223.0 - 3.0, t2.segments
    # what is seen on either side of the cloud is counted, the rest may hide under it
    seen = (97.0 - 50.0) + (281.0 - 223.0)
    # (the cloud's edges, grown by the mask buffer, are known to about a pixel each)
    assert abs(t2.occupied_m - seen) <= PITCH_M + GSD_M
    assert t2.cars < 16 <= t2.cars_high
    assert m.cars_low <= 16 <= m.cars_high


def test_large_masked_part_flags_cloudy(yard: Yard, reference) -> None:
    x, y = yard.point(2, 200.0)
    s = make_scene(yard, reference, (Train(1, 50.0, 6, "dark"),), cloud=(x, y, 130.0), seed=24)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    assert "cloudy" in m.flags
    assert m.valid_fraction < 0.5


def test_cloud_over_empty_track_never_becomes_cars(yard: Yard, reference) -> None:
    x, y = yard.point(3, 250.0)
    s = make_scene(yard, reference, (), cloud=(x, y, 35.0), seed=25)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, s.reference, s.reference_valid)
    assert m.occupied_m == 0.0
    assert min(t.valid_fraction for t in m.tracks) < 0.9
    # the same cloud left unmasked (a missed cloud) is bright and far from ballast: it would
    # be "occupied"; masked, it is not. This guards that the mask is what keeps it out.
    unmasked = detect_image(s.image, np.ones_like(s.valid), s.tracks, GSD_M, PITCH_M,
                            s.reference, s.reference_valid)
    assert unmasked.occupied_m > PITCH_M


def test_no_reference_mode(yard: Yard, reference) -> None:
    trains = (Train(2, 80.0, 9, "dark"),)
    s = make_scene(yard, reference, trains, seed=26)
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M)
    assert "no_reference" in m.flags
    assert_track_close(s, m)
    assert m.cars_low <= 9 <= m.cars_high
    prof = extract_profiles(s.image, s.valid, s.tracks, GSD_M)
    assert "no_reference" in measure_scene(prof, None, GSD_M, PITCH_M).flags


def test_no_reference_main_scene(main_scene: Scene) -> None:
    """Without a reference the background is rough (higher noise floor): the ballast-grey
    roofs are lost and, without the sun's side, a dark train and its shadow may trade tracks,
    but the coloured trains are measured and the interval still holds the total."""
    s = main_scene
    true_cars = sum(t["cars"] for t in s.truth.values())
    true_m = sum(t["occupied_m"] for t in s.truth.values())
    m = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M)
    assert m.cars_low <= true_cars <= m.cars_high
    assert abs(m.occupied_m - true_m) <= 0.25 * true_m
    # knowing where shadows fall (sun azimuth 153 deg puts them on the next track) settles it
    sunny = detect_image(s.image, s.valid, s.tracks, GSD_M, PITCH_M, sun_azimuth_deg=153.0)
    tracks = by_id(sunny)
    for k in ("t3", "t4"):
        true = s.truth[k]["occupied_m"]
        assert abs(tracks[k].occupied_m - true) <= max(PITCH_M, 0.1 * true)
    assert tracks["t5"].occupied_m < 0.5 * PITCH_M
    assert abs(sunny.cars - true_cars) <= 0.1 * true_cars


def test_three_band_imagery(main_scene: Scene) -> None:
    s = main_scene
    m = detect_image(s.image[:3], s.valid, s.tracks, GSD_M, PITCH_M, s.reference[:3],
                     s.reference_valid)
    tracks = by_id(m)
    # without NIR t1's ballast-grey roofs are invisible and only their shadow on t2 shows, so
    # t1/t2 may trade metres; the coloured trains and the total must hold
    for k in ("t3", "t4"):
        true = s.truth[k]["occupied_m"]
        assert abs(tracks[k].occupied_m - true) <= max(PITCH_M, 0.1 * true)
    true_total = sum(t["occupied_m"] for t in s.truth.values())
    assert abs(m.occupied_m - true_total) <= 0.1 * true_total


def test_history_background_matches_reference_result(main_scene: Scene, yard: Yard) -> None:
    """The pipeline path: profiles of earlier (aligned) scenes as the background."""
    from railwatch.core import align_to_reference, background_from_history

    s = main_scene
    history = []
    for i, start in enumerate((20.0, 150.0, 280.0, 90.0, 210.0)):
        img, val = yard.render((Train(i % 5, start, 5, "dark"),), shift_px=(0.3 * i - 0.6, 0.2),
                               seed=40 + i)
        al_img, al_val, _ = align_to_reference(img, val, s.reference, s.reference_valid)
        history.append(extract_profiles(al_img, al_val, s.tracks, GSD_M))
    background = background_from_history(history)
    assert background is not None
    img, val, al = align_to_reference(s.image, s.valid, s.reference, s.reference_valid)
    # profiles stored without positions (as the pipeline does) get them back from the tracks
    bare = {k: type(p)(p.track_id, p.step_m, p.values, p.valid)
            for k, p in extract_profiles(img, val, s.tracks, GSD_M).items()}
    m = measure_scene(bare, background, GSD_M, PITCH_M, al, tracks=s.tracks)
    assert_track_close(s, m)


def test_interval_widens_with_uncertainty() -> None:
    """A track of 20 cars has a wider interval than one of 2, and both bracket the estimate."""
    from railwatch.core.measure import _count, _interval

    p = DetectorParams()
    small = _interval(*_count([(0.0, 28.0)], PITCH_M, GSD_M, p), 0.0, p)
    large = _interval(*_count([(0.0, 289.0)], PITCH_M, GSD_M, p), 0.0, p)
    assert small[1] <= small[0] <= small[2] and large[1] <= large[0] <= large[2]
    assert small[0] == 2 and large[0] == 20
    assert large[2] - large[1] > small[2] - small[1]
