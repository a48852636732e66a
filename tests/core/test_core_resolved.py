"""Cars counted one by one at 0.5 m GSD, on small synthetic profiles (no simulator)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from railwatch.core import DetectorParams, TrackMeasurement, TrackProfile, measure_scene
from railwatch.core.resolved import (
    bridge_gaps,
    count_segment,
    gap_signal,
    gap_trains,
    profile_step_m,
    running_nanmedian,
)

STEP = 0.5
PITCH = 14.5
BALLAST = np.array([900.0, 1000.0, 1100.0, 1300.0])


def track(cars: list[float], start: float = 40.0, length: float = 300.0, gap: float = 1.0,
          seed: int = 0) -> tuple[TrackProfile, TrackProfile, tuple[float, float]]:
    """(image profile, empty background, true (start, end)) of one track: cars of the given
    lengths from `start`, `gap` metres apart, darker roofs of varying colour."""
    rng = np.random.default_rng(seed)
    n = round(length / STEP)
    s = (np.arange(n) + 0.5) * STEP
    bg = BALLAST * (1.0 + 0.05 * np.sin(s / 40.0))[:, None]
    img = bg.copy()
    pos = start
    for length_m in cars:
        on = (s >= pos) & (s < pos + length_m)
        img[on] = BALLAST * rng.uniform(0.3, 0.6, 4)
        pos += length_m + gap
    noise = rng.normal(0.0, 8.0, img.shape)
    valid = np.ones(n, dtype=bool)
    image = TrackProfile("t", STEP, (img + noise).astype(np.float32), valid)
    background = TrackProfile("t", STEP, bg.astype(np.float32), valid)
    return image, background, (start, pos - gap)


def two_trains(cars: list[float], between_m: float, seeds: tuple[int, int]
               ) -> tuple[npt.NDArray[np.float32], TrackProfile, tuple[float, float], tuple[float, float]]:
    """(image values, empty background, first train's (start, end), second's) of one track
    holding two trains of `cars` `between_m` apart."""
    first, background, (s1, e1) = track(cars, start=60.0, seed=seeds[0])
    second, _, (s2, e2) = track(cars, start=e1 + between_m, seed=seeds[1])
    s = (np.arange(first.values.shape[0]) + 0.5) * STEP
    values = np.where(((s >= s2) & (s < e2))[:, None], second.values, first.values)
    return values, background, (s1, e1), (s2, e2)


def scale_metre(values: npt.NDArray[np.float32], start_m: float, factor: float) -> None:
    """Scale the metre of samples from `start_m` on (a train's end peaking like a coupler)."""
    s = (np.arange(values.shape[0]) + 0.5) * STEP
    values[(s >= start_m) & (s < start_m + 1.0)] *= factor


def measure_one(values: npt.NDArray[np.float32], background: TrackProfile) -> TrackMeasurement:
    (t,) = measure_scene({"t": TrackProfile("t", STEP, values, background.valid)}, {"t": background},
                         0.5, PITCH).tracks
    return t


def count(cars: list[float]) -> tuple[int, int, int]:
    image, _, (s, e) = track(cars)
    p = DetectorParams()
    g = gap_signal({"t": image}, bridge_gaps({"t": image}, p), p)["t"]
    c = count_segment(g, round(s / STEP), round(e / STEP), STEP, PITCH, p)
    return c.cars, c.low, c.high


def test_step_follows_gsd() -> None:
    assert profile_step_m(3.0) == 1.0
    assert profile_step_m(0.5) == 0.5
    assert profile_step_m(0.1) == DetectorParams().resolved_min_step_m


def test_running_median_bridges_a_gap_and_skips_invalid() -> None:
    x = np.array([[5.0], [5.0], [0.0], [5.0], [5.0], [np.nan], [5.0]])
    valid = np.isfinite(x[:, 0])
    out = running_nanmedian(x, valid, 3)
    assert out[2, 0] == 5.0 and out[6, 0] == 5.0


@pytest.mark.parametrize("n", [1, 2, 5, 12, 20])
def test_cars_with_coupler_gaps_are_counted_exactly(n: int) -> None:
    rng = np.random.default_rng(n)
    cars, low, high = count(list(rng.uniform(11.5, 15.5, n)))
    assert cars == n
    assert low <= n <= high and high - low <= 2


def test_block_train_of_long_cars_counts_by_its_own_period() -> None:
    # 17.5 m cars: length / AOI pitch would say 12 for these 10
    cars, low, high = count([17.5] * 10)
    assert cars == 10 and low <= 10 <= high


def test_block_train_without_visible_gaps_uses_the_period() -> None:
    # gaps too faint to see: the count falls back on the length over the pitch
    image, _, (s, e) = track([13.5] * 8, gap=0.0)
    p = DetectorParams()
    g = gap_signal({"t": image}, bridge_gaps({"t": image}, p), p)["t"]
    c = count_segment(g, round(s / STEP), round(e / STEP), STEP, PITCH, p)
    assert abs(c.cars - 8) <= 1


def test_measure_scene_counts_one_by_one_at_half_a_metre() -> None:
    image, background, _ = track([12.0, 13.0, 17.5, 17.5, 17.5, 17.5, 13.0], seed=3)
    m = measure_scene({"t": image}, {"t": background}, 0.5, PITCH)
    (t,) = m.tracks
    assert t.cars == 7 and t.cars_low <= 7 <= t.cars_high
    assert m.cars == 7 and m.cars_low <= 7 <= m.cars_high


def test_grey_train_is_found_by_its_gaps() -> None:
    # roofs as bright as the ballast: only the dark coupler gaps tell the train
    image, background, _ = track([13.5] * 8, seed=5)
    values = background.values.copy()
    s = (np.arange(values.shape[0]) + 0.5) * STEP
    for k in range(1, 8):
        gap = 40.0 + k * 14.5 - 1.0
        values[(s >= gap) & (s < gap + 1.0)] *= 0.4
    grey = TrackProfile("t", STEP, values, image.valid)
    m = measure_scene({"t": grey}, {"t": background}, 0.5, PITCH)
    assert abs(m.cars - 8) <= 1
    # and an empty track stays empty
    assert measure_scene({"t": background}, {"t": background}, 0.5, PITCH).cars == 0


def _faint_gaps(at_m: list[float], seed: int = 5) -> tuple[TrackProfile, TrackProfile]:
    """(image, empty background): ballast-grey roofs, so the spectra do not change, with faint
    1 m coupler gaps (4 % darker: a gap signal of about 3-4.5, under `resolved_gap_z`) at
    `at_m`."""
    _, background, _ = track([13.5], seed=seed)
    rng = np.random.default_rng(seed)
    values = background.values + rng.normal(0.0, 8.0, background.values.shape)
    s = (np.arange(values.shape[0]) + 0.5) * STEP
    for at in at_m:
        values[(s >= at) & (s < at + 1.0)] *= 0.96
    return TrackProfile("t", STEP, values.astype(np.float32), background.valid), background


def test_a_grey_train_with_faint_gaps_is_found_by_their_even_spacing() -> None:
    # no gap stands out alone; seven evenly spaced a car apart do
    image, background = _faint_gaps([40.0 + k * 14.5 - 1.0 for k in range(1, 8)])
    p = DetectorParams()
    g = gap_signal({"t": image}, bridge_gaps({"t": image}, p), p)["t"]
    assert 2.5 < float(np.max(g)) < p.resolved_gap_z
    m = measure_scene({"t": image}, {"t": background}, 0.5, PITCH)
    assert abs(m.cars - 8) <= 1, m.tracks[0].segments
    # three of them, or seven at uneven spacings (10 and 19 m), are not a train
    image, background = _faint_gaps([40.0 + k * 14.5 for k in range(3)])
    assert measure_scene({"t": image}, {"t": background}, 0.5, PITCH).cars == 0
    image, background = _faint_gaps(list(np.cumsum([40.0, 10.0, 19.0, 10.0, 19.0, 10.0, 19.0])))
    assert measure_scene({"t": image}, {"t": background}, 0.5, PITCH).cars == 0
    # without a background the scene's own ballast takes the gaps' pattern in (as it does a
    # neighbour's shadow, which shows the neighbour's couplers): faint gaps are not counted
    image, _ = _faint_gaps([40.0 + k * 14.5 - 1.0 for k in range(1, 8)])
    assert measure_scene({"t": image}, None, 0.5, PITCH).cars == 0


def test_a_chain_of_gaps_runs_on_through_gaps_a_neighbour_could_explain() -> None:
    # a grey train's twelve couplers, four of them where the neighbours explain the change (a
    # roof there stood out a little and its neighbour's shadow could have darkened it): still
    # one train. Four explained gaps past its last own one (a neighbour's shadow shows that
    # neighbour's couplers) are not this track's cars.
    pitch = round(PITCH / STEP)
    n = 600
    at = [40 + k * pitch for k in range(12)]
    g = np.zeros(n)
    g[at] = 10.0
    usable = np.ones(n, dtype=bool)
    explained = np.zeros(n, dtype=bool)
    for k in (3, 4, 5, 6):
        explained[at[k] - 3: at[k] + 4] = True
    p = DetectorParams()
    trains = gap_trains(g, usable, STEP, PITCH, p, explained=explained)
    assert len(trains) == 1, trains
    (lo, hi), = trains
    assert lo < at[0] * STEP and hi > at[-1] * STEP
    explained[:] = False
    for k in (8, 9, 10, 11):
        explained[at[k] - 3: at[k] + 4] = True
    (lo, hi), = gap_trains(g, usable, STEP, PITCH, p, explained=explained)
    assert at[7] * STEP < hi < at[8] * STEP


def test_a_visible_train_ends_where_its_end_gap_meets_ballast() -> None:
    # the ends of a train peak in the gap signal like couplers do (a dark end, its shadow):
    # a chain of gaps ending there must not add half a car of ballast beyond each end
    image, background, (start, end) = track([13.5] * 6, start=100.0, seed=7)
    values = image.values.copy()
    s = (np.arange(values.shape[0]) + 0.5) * STEP
    for lo in (start - 1.0, end):
        values[(s >= lo) & (s < lo + 1.0)] *= 0.4
    m = measure_scene({"t": TrackProfile("t", STEP, values, image.valid)}, {"t": background}, 0.5, PITCH)
    (t,) = m.tracks
    assert t.cars == 6
    assert abs(t.occupied_m - (end - start)) <= 3.0, t.segments


def test_a_roof_pattern_between_couplers_is_not_a_car_each() -> None:
    # two bright-edged containers on each of six 15 m flat cars: the gap signal peaks every
    # 5 m inside the cars, stronger than at the couplers; the cars are still six
    n = round(6 * 15.0 / STEP)
    g = np.zeros(n)
    for car in range(6):
        for at, height in ((0.0, 7.0), (5.0, 10.0), (10.0, 10.0)):
            g[round((car * 15.0 + at) / STEP)] = height + 0.01 * car
    c = count_segment(g, 0, n, STEP, PITCH, DetectorParams())
    assert c.cars == 6 and c.low <= 6 <= c.high
    # (with gaps allowed 0.6 pitches apart, the 10 m spacings set the period: 7 cars)


def test_ballast_between_two_visible_trains_is_not_bridged_by_their_end_gaps() -> None:
    # two trains 25 m apart (about two cars' spacing between their end gaps, as if one
    # coupler gap were missed): the chain of gaps must not run across the empty ballast
    values, background, (s1, e1), (s2, e2) = two_trains([13.5] * 4, 25.0, (11, 12))
    for lo in (s1 - 1.0, e1, s2 - 1.0, e2):
        scale_metre(values, lo, 0.4)
    t = measure_one(values, background)
    assert t.cars == 8
    assert len(t.segments) == 2 and abs(t.occupied_m - (e1 - s1) - (e2 - s2)) <= 6.0, t.segments


def test_two_visible_trains_less_than_a_car_apart_are_two() -> None:
    # 10 m of ballast between two trains, the second's front end peaking like a coupler (a
    # bright end): its gap and the first train's last coupler are 1.7 pitches apart, which a
    # chain bridges as "one gap missed", adding a car; the unchanged ballast between visible
    # roofs ends the chain
    values, background, _, (s2, _) = two_trains([14.5] * 5, 10.0, (21, 22))
    scale_metre(values, s2 - 1.0, 1.8)
    t = measure_one(values, background)
    assert t.cars == 10, t.segments
    assert len(t.segments) == 2, t.segments


@pytest.mark.parametrize("seed", range(3))
def test_a_train_less_than_a_car_behind_another_starts_at_its_own_front(seed: int) -> None:
    # 11 m of ballast between two trains, both ends of each peaking like couplers: the second
    # train's chain starts at its front end, and the car's length beyond it reaches into the
    # first train; only the half car a chain's end would add must be ballast (it read 7 cars
    # for 6, the second train reaching back over the ballast to the first)
    values, background, (s1, e1), (s2, e2) = two_trains([13.5] * 3, 11.0, (31 + seed, 41 + seed))
    for lo in (s1 - 1.0, e1, s2 - 1.0, e2):
        scale_metre(values, lo, 0.4)
    t = measure_one(values, background)
    assert t.cars == 6, t.segments
    assert len(t.segments) == 2 and abs(t.occupied_m - (e1 - s1) - (e2 - s2)) <= 6.0, t.segments


def test_a_siding_beside_a_train_is_not_read_as_its_leak_when_cars_are_resolved() -> None:
    # two sidings 5 m (10 px) apart, trains side by side; the second's roofs differ from the
    # ballast half as much as the first's, as a leak would at 3 m. At 0.5 m a roof does not
    # reach the next siding's corridor: both trains count (bright roofs: no shadow either)
    a, bg, _ = track([13.5] * 6, start=80.0, seed=21)
    n = a.values.shape[0]
    s = (np.arange(n) + 0.5) * STEP
    at = {k: np.column_stack([s / STEP, np.full(n, row)]) for k, row in (("a", 100.0), ("b", 110.0))}
    bright = (2 * bg.values - a.values).astype(np.float32)
    profiles = {"a": TrackProfile("a", STEP, bright, a.valid, at["a"]),
                "b": TrackProfile("b", STEP, (bg.values + 0.5 * (bright - bg.values)).astype(np.float32),
                                  a.valid, at["b"])}
    background = {k: replace(bg, track_id=k, positions=at[k]) for k in at}
    m = measure_scene(profiles, background, 0.5, PITCH)
    assert [t.cars for t in m.tracks] == [6, 6]


def loaded_yard(seed: int) -> tuple[dict[str, TrackProfile], dict[str, TrackProfile], dict[str, int]]:
    """Four sidings 5 m apart, each 60-90 % covered by one train of one colour (uniform roofs),
    the rest ballast: the bulk of the yard's samples is cars."""
    rng = np.random.default_rng(seed)
    n = round(360.0 / STEP)
    s = (np.arange(n) + 0.5) * STEP
    profiles, background, truth = {}, {}, {}
    for k in range(4):
        bg = BALLAST * (1.0 + 0.05 * np.sin(s / 40.0 + k))[:, None]
        img = bg + rng.normal(0.0, 8.0, bg.shape)
        roof = BALLAST * rng.uniform(0.3, 0.6, 4)
        pos, cars = 20.0 + 10.0 * k, 0
        while pos + PITCH - 1.0 <= 340.0 - 20.0 * k:
            on = (s >= pos) & (s < pos + PITCH - 1.0)
            img[on] = roof + rng.normal(0.0, 3.0, (int(on.sum()), 4))
            pos += PITCH
            cars += 1
        at = np.column_stack([s / STEP, np.full(n, 100.0 + 10.0 * k)])
        valid = np.ones(n, dtype=bool)
        profiles[f"s{k}"] = TrackProfile(f"s{k}", STEP, img.astype(np.float32), valid, at)
        background[f"s{k}"] = TrackProfile(f"s{k}", STEP, bg.astype(np.float32), valid, at)
        truth[f"s{k}"] = cars
    return profiles, background, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_loaded_yards_empty_ballast_is_not_read_as_cars(seed: int) -> None:
    # the noise is the spread of "no change", not of the cars that fill most of the yard, and
    # is not bound to the pairs of nearby samples (tiny on a uniform train's roofs): with
    # detector 0.4.12 whole sidings read as occupied end to end (e.g. 25 cars for 15)
    profiles, background, truth = loaded_yard(seed)
    m = measure_scene(profiles, background, 0.5, PITCH)
    assert all(abs(t.cars - truth[t.track_id]) <= 1 for t in m.tracks), (
        [(t.track_id, t.cars, truth[t.track_id]) for t in m.tracks])


def test_faint_gaps_a_car_apart_join_two_cuts_of_strong_ones_into_one_train() -> None:
    # ten cars: two pairs of strong couplers four cars apart, three faint ones between (grey
    # cars): one train of 9 gap-to-gap cars plus its ends, not two cuts. The same faint gaps
    # off the cars' spacing (19 m apart), or no faint gaps at all, leave two cuts
    pitch = round(PITCH / STEP)
    n = 600
    strong = [60 + k * pitch for k in (0, 1, 5, 6)]

    def signal(faint: list[int]) -> npt.NDArray[np.float64]:
        g = np.zeros(n)
        g[strong] = 10.0
        g[faint] = 3.5
        return g

    usable = np.ones(n, dtype=bool)
    p = DetectorParams(resolved_chain_gaps=2)  # each cut of two strong gaps alone is a train
    one = gap_trains(signal([60 + k * pitch for k in (2, 3, 4)]), usable, STEP, PITCH, p)
    assert len(one) == 1 and one[0][0] < strong[0] * STEP and one[0][1] > strong[-1] * STEP, one
    uneven = [strong[1] + 38, strong[1] + 76, strong[1] + 114]  # 19 m apart at 0.5 m steps
    assert len(gap_trains(signal(uneven), usable, STEP, PITCH, p)) == 2
    assert len(gap_trains(signal([]), usable, STEP, PITCH, p)) == 2
    # with the default (three gaps make a train) the cuts alone are no train, the row is
    assert gap_trains(signal([]), usable, STEP, PITCH, DetectorParams()) == []
    assert len(gap_trains(signal([60 + k * pitch for k in (2, 3, 4)]), usable, STEP, PITCH,
                          DetectorParams())) == 1
