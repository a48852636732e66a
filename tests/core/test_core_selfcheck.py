"""The self-check on profiles: evidence where the background stands out from the yard's typical
ballast must also stand out from the scene's own ballast, and a long train is not its own ballast.

Profiles at 1 m steps over a ballast whose tone drifts along each track by a few per cent (as
real ballast does), the same drift in the background and the image: the background stands out
from the yard's one typical spectrum nearly everywhere, so the self-check applies everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from railwatch.core import DetectorParams, TrackProfile, measure_scene
from railwatch.core.selfref import background_from_scene, other_beds

BALLAST = np.array([1180.0, 1280.0, 1400.0, 1700.0])
GREY_ROOF = 0.87  # a gondola's roof against ballast: ~13 % darker in every band
DARK_ROOF = 0.35
LENGTH = 600  # samples of 1 m
PITCH_M = 14.5
GSD_M = 3.0
F32 = npt.NDArray[np.float32]


def ballast(track: int) -> F32:
    """(LENGTH, 4): the track's ballast, a few per cent off the yard's typical spectrum (its
    visible bands and NIR apart, as weeds or older stone do) and drifting over tens of metres."""
    s = np.arange(LENGTH, dtype=np.float64)
    vis = (0.03, -0.03, 0.04, -0.02)[track % 4] + 0.06 * np.sin(2 * np.pi * s / (70.0 + 13.0 * track))
    nir = (-0.02, 0.02, -0.03, 0.02)[track % 4] + 0.06 * np.sin(2 * np.pi * s / (55.0 + 7.0 * track) + 1)
    rel = np.stack([vis, vis, vis, nir], axis=1)
    return (BALLAST[None, :] * (1.0 + rel)).astype(np.float32)


def noisy(values: F32, seed: int) -> F32:
    rng = np.random.default_rng(seed)
    return (values * (1.0 + 0.008 * rng.normal(size=values.shape))).astype(np.float32)


def profiles(beds: dict[str, F32], seed: int) -> dict[str, TrackProfile]:
    return {k: TrackProfile(k, 1.0, noisy(v, seed + i), np.ones(LENGTH, dtype=bool))
            for i, (k, v) in enumerate(beds.items())}


def with_train(bed: F32, start: int, stop: int, roof: float) -> F32:
    out = bed.copy()
    out[start:stop] *= roof
    return out


SIDINGS = {"t1": 20.0, "t2": 20.0 + 5.3 / GSD_M, "t3": 20.0 + 2 * 5.3 / GSD_M,
           "t0": 20.0 - 5.3 / GSD_M}  # rows of four sidings 5.3 m apart, running east


def located(profs: dict[str, TrackProfile]) -> dict[str, TrackProfile]:
    """The profiles of `SIDINGS` with their sample positions (pixels)."""
    cols = 5.0 + (np.arange(LENGTH) + 0.5) / GSD_M
    return {k: TrackProfile(k, 1.0, pr.values, pr.valid,
                            np.column_stack([cols, np.full(LENGTH, SIDINGS[k])]))
            for k, pr in profs.items()}


def assert_two_trains_counted(beds: dict[str, F32], trains: dict[str, F32], seed: int) -> None:
    """`trains` on t1 and t2 (loaded over 540 m, 37 cars each) against the empty `beds`, the
    sun in the south (+row: shadows fall north, away from t2): both counted, t3 empty."""
    background = located(profiles(beds, seed))
    image = located(profiles({**beds, **trains}, seed + 1))
    m = measure_scene(image, background, GSD_M, PITCH_M, sun_azimuth_deg=180.0,
                      sun_elevation_deg=40.0)
    counted = {t.track_id: t for t in m.tracks}
    for k in ("t1", "t2"):
        assert abs(counted[k].occupied_m - 540.0) <= 54.0, counted[k]
        assert counted[k].cars_low <= 37 <= counted[k].cars_high, counted[k]
    assert counted["t3"].cars == 0, counted["t3"]


@pytest.mark.parametrize(("start", "stop", "cars", "roof"),
                         [(200, 360, 11, GREY_ROOF), (30, 570, 37, GREY_ROOF), (30, 570, 37, 0.96)],
                         ids=["160 m", "90 % of the siding", "90 %, 4 % darker"])
def test_long_grey_train_is_not_its_own_ballast(start: int, stop: int, cars: int,
                                                roof: float) -> None:
    """A grey train longer than half the scene-ballast window on one siding: the scene's own
    running median must not follow it, or the middle of the train is lost. It is left out of
    that ballast however much of the track it covers (bridged from the ends; the rule used to
    stop at half a track and lost a train over 90 % of it), once it changed beyond the
    ballast's texture somewhere: a roof 4 % darker peaks at z 8-9 here (with the rule at z 9
    the train read 460 m, 32 cars)."""
    beds = {f"t{i + 1}": ballast(i) for i in range(4)}
    background = profiles(beds, 1)
    image = profiles({**beds, "t2": with_train(beds["t2"], start, stop, roof)}, 2)
    m = measure_scene(image, background, GSD_M, PITCH_M)
    t2 = next(t for t in m.tracks if t.track_id == "t2")
    assert abs(t2.occupied_m - (stop - start)) <= 0.1 * (stop - start), t2
    assert t2.cars_low <= cars <= t2.cars_high, t2
    assert all(t.cars == 0 for t in m.tracks if t.track_id != "t2"), m.tracks


def test_cars_parked_in_the_background_are_not_counted_where_they_left() -> None:
    """A background that holds a train (a composite of days it stood still) against an image
    of the empty siding: the change is the train leaving, not cars arriving."""
    beds = {f"t{i + 1}": ballast(i) for i in range(4)}
    background = profiles({**beds, "t3": with_train(beds["t3"], 150, 260, DARK_ROOF)}, 3)
    image = profiles(beds, 4)
    m = measure_scene(image, background, GSD_M, PITCH_M)
    assert m.cars == 0, m.tracks


def test_another_bed_only_where_the_reference_shows_one() -> None:
    """A siding covered end to end by one uniform train looks like another bed in the scene;
    given the reference's beds (none: every siding lies on the yard's ballast) its scene
    ballast is the yard's, and a siding the reference shows on another bed keeps its own."""
    beds = {f"t{i + 1}": ballast(i) for i in range(4)}
    reference = profiles({**beds, "t4": (beds["t4"] * 1.4).astype(np.float32)}, 7)
    image = profiles({**beds, "t2": with_train(beds["t2"], 0, LENGTH, 0.6),
                      "t4": (beds["t4"] * 1.4).astype(np.float32)}, 8)
    p = DetectorParams()
    assert other_beds(reference, p) == {"t4"}
    given = background_from_scene(image, p, beds=other_beds(reference, p))
    guessed = background_from_scene(image, p)
    train = float(np.median(image["t2"].values[:, 0]))
    yard = float(np.median(BALLAST[0] * 1.0))
    assert abs(float(np.median(guessed["t2"].values[:, 0])) - train) < 0.05 * train
    assert abs(float(np.median(given["t2"].values[:, 0])) - yard) < 0.06 * yard
    assert abs(float(np.median(given["t4"].values[:, 0])) - 1.4 * yard) < 0.08 * yard


@pytest.mark.parametrize("seed", [11, 21, 31])
def test_a_dark_train_on_the_sunny_side_of_a_brighter_one_is_its_own(seed: int) -> None:
    """Two sidings 5.3 m apart, each loaded over 90 % of its length: a bright train and, on
    its sunny side, a dark one. The dark train changed less than its neighbour, but it can be
    neither the bright train's leak (it is more than half as strong) nor its shadow (shadows
    fall the other way), so it stays out of the scene's ballast and is counted; it was left in
    it (a weaker change beside a stronger one) and became in part its own ballast: 31-34 of
    37 cars."""
    beds = {k: ballast(i) for i, k in enumerate(SIDINGS)}
    assert_two_trains_counted(beds, {"t1": with_train(beds["t1"], 30, 570, 1.25),
                                     "t2": with_train(beds["t2"], 30, 570, 0.82)}, seed)



@pytest.mark.parametrize("seed", [11, 21, 31])
def test_a_weaker_train_of_another_colour_beside_a_bright_one_is_no_leak(seed: int) -> None:
    """Two sidings 5.3 m apart, each loaded over 90 % of its length: bright cars (every band
    +60 %) and beside them grey ones (visible bands -15 %, the near infrared as the ballast's).
    The grey train changed less than half as much as its neighbour, but a leak has the
    neighbour's colour: no share of a brightening leaves a darkening. So it is the track's own,
    stays out of the scene's ballast and is counted (by strength alone it was taken for a
    possible leak and left in the ballast, which it then became in part)."""
    beds = {k: ballast(i) for i, k in enumerate(SIDINGS)}
    grey = beds["t2"].copy()
    grey[30:570, :3] *= 0.85
    assert_two_trains_counted(beds, {"t1": with_train(beds["t1"], 30, 570, 1.6), "t2": grey}, seed)
