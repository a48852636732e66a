"""Which cars stand where on each day, and the weather: the ground truth behind every scene.

Every day's plan is a pure function of (AOI, date, seed), never of the requested date range, so
publishing a wider range later adds scenes without changing the ones already published. Quiet
traffic comes from a few independent "slots", each holding a train for a few days before it
moves on; the Tumangang 2023 plan overlays the analysts' story on that baseline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from railwatch.aoi import AOI, Track
from railwatch.simulate.noise import stable_key

COUPLER_GAP_M = 1.0
END_MARGIN_M = 15.0  # trains keep clear of the track ends (buffer stops, switches)
CLEARANCE_M = 8.0  # minimum free track between two trains on one track


@dataclass(frozen=True)
class CarType:
    """A family of rolling stock: length relative to the yard's mean car, height, frequency."""

    name: str
    length_offset_m: float
    height_m: float
    weight: float  # how common in mixed trains


CAR_TYPES: dict[str, CarType] = {
    t.name: t
    for t in (
        CarType("tank", -1.0, 4.4, 0.20),
        CarType("boxcar", 1.0, 4.6, 0.25),
        CarType("hopper", -0.5, 4.2, 0.15),
        CarType("gondola", 0.0, 2.9, 0.25),
        CarType("flatcar", 1.0, 3.8, 0.15),  # carries containers or tarped loads
    )
}
N_COLOURS = 3  # colour variants per type; the palette lives in the renderer


@dataclass(frozen=True)
class Car:
    """One rail car: its type, length and colour variant."""

    type: str
    length_m: float
    colour: int


@dataclass(frozen=True)
class Train:
    """Consecutive cars on one track, the first car's front at `start_m` along the centreline."""

    track_id: str
    start_m: float
    cars: tuple[Car, ...]
    gap_m: float = COUPLER_GAP_M

    @property
    def length_m(self) -> float:
        return sum(c.length_m for c in self.cars) + self.gap_m * max(len(self.cars) - 1, 0)

    @property
    def end_m(self) -> float:
        return self.start_m + self.length_m

    def car_starts(self) -> list[float]:
        """Where each car's front stands (metres from the track's first vertex)."""
        starts, pos = [], self.start_m
        for car in self.cars:
            starts.append(pos)
            pos += car.length_m + self.gap_m
        return starts


@dataclass(frozen=True)
class Weather:
    """Target scene cloud fraction (0..1) and haze strength (0..1) of one acquisition."""

    cloud_cover: float
    haze: float


@dataclass(frozen=True)
class DayPlan:
    """Everything standing on the AOI's tracks at acquisition time, and the weather."""

    day: dt.date
    trains: tuple[Train, ...]
    weather: Weather

    @property
    def n_cars(self) -> int:
        return sum(len(t.cars) for t in self.trains)


def is_main_line(track: Track) -> bool:
    """Main lines carry passing trains, sidings hold parked ones."""
    return is_main_line_id(track.id) or "main" in (track.name or "").lower()


def is_main_line_id(track_id: str) -> bool:
    """The id-only test (the renderer extends main lines beyond the AOI)."""
    return "main" in track_id.lower()


def make_cars(
    rng: np.random.Generator, n: int, pitch_m: float, kinds: list[str] | None = None
) -> tuple[Car, ...]:
    """`n` cars whose mean front-to-front pitch is the yard's `car_pitch_m`.

    Half the trains are blocks of one type, mostly in one livery (unit trains); the others
    are mixed.
    """
    names = list(CAR_TYPES)
    probs = np.array([CAR_TYPES[k].weight for k in names])
    probs /= probs.sum()
    pool = kinds or names
    block = rng.random() < 0.5
    block_type = str(rng.choice(pool))
    block_colour = int(rng.integers(N_COLOURS))
    mean_len = pitch_m - COUPLER_GAP_M
    lo, hi = max(6.0, mean_len - 2.5), mean_len + 2.5
    mean_offset = float(sum(CAR_TYPES[k].length_offset_m * p for k, p in zip(names, probs, strict=True)))
    cars = []
    for _ in range(n):
        if block:
            kind = block_type
        elif kinds:
            kind = str(rng.choice(kinds))
        else:
            kind = str(rng.choice(names, p=probs))
        length = mean_len + CAR_TYPES[kind].length_offset_m - mean_offset + rng.normal(0.0, 0.3)
        colour = int(rng.integers(N_COLOURS))
        if block and rng.random() < 0.85:
            colour = block_colour
        cars.append(Car(kind, round(float(np.clip(length, lo, hi)), 2), colour))
    return tuple(cars)


def _fits(train: Train, placed: list[Train], track_len: float) -> bool:
    if train.start_m < END_MARGIN_M or train.end_m > track_len - END_MARGIN_M:
        return False
    return all(
        t.track_id != train.track_id
        or train.end_m + CLEARANCE_M <= t.start_m
        or t.end_m + CLEARANCE_M <= train.start_m
        for t in placed
    )


def _place(
    rng: np.random.Generator, track: Track, cars: tuple[Car, ...], placed: list[Train]
) -> Train | None:
    """Put a train at a random free spot on a track, shortening it if the track is too short."""
    length = track.length_m
    while cars:
        span = sum(c.length_m for c in cars) + COUPLER_GAP_M * (len(cars) - 1)
        room = length - 2 * END_MARGIN_M - span
        if room >= 0:
            for _ in range(8):
                train = Train(track.id, round(END_MARGIN_M + float(rng.random()) * room, 2), cars)
                if _fits(train, placed, length):
                    return train
        cars = cars[:-1]
    return None


def quiet_trains(aoi: AOI, day: dt.date, seed: int, max_cars: int = 20, min_cars: int = 0) -> list[Train]:
    """A handful of short trains that stay a few days each and move on (any AOI)."""
    sidings = [t for t in aoi.tracks if not is_main_line(t)] or list(aoi.tracks)
    n_slots = min(7, 3 + len(sidings))
    base = stable_key("quiet", aoi.id, seed)
    placed: list[Train] = []
    for slot in range(n_slots):
        srng = np.random.default_rng([base, slot])
        period = int(srng.integers(2, 7))
        phase = int(srng.integers(period))
        epoch = (day.toordinal() + phase) // period
        rng = np.random.default_rng([base, slot, epoch])
        if rng.random() > 0.6:
            continue
        track = sidings[int(rng.integers(len(sidings)))]
        cars = make_cars(rng, int(rng.integers(2, 8)), aoi.car_pitch_m)
        train = _place(rng, track, cars, placed)
        if train is not None:
            placed.append(train)
    while sum(len(t.cars) for t in placed) > max_cars:
        placed.pop()
    short = min_cars - sum(len(t.cars) for t in placed)
    if short > 0:
        rng = np.random.default_rng([base, 999, day.toordinal()])
        track = sidings[int(rng.integers(len(sidings)))]
        train = _place(rng, track, make_cars(rng, short + 1, aoi.car_pitch_m), placed)
        if train is not None:
            placed.append(train)
    return placed


def passing_train(aoi: AOI, day: dt.date, seed: int, probability: float = 0.2) -> Train | None:
    """Now and then a long train on a main line at acquisition time."""
    mains = [t for t in aoi.tracks if is_main_line(t)]
    rng = np.random.default_rng([stable_key("main", aoi.id, seed), day.toordinal()])
    if not mains or rng.random() > probability:
        return None
    track = mains[int(rng.integers(len(mains)))]
    cars = make_cars(rng, int(rng.integers(20, 45)), aoi.car_pitch_m)
    return _place(rng, track, cars, [])


def generic_weather(aoi_id: str, day: dt.date, seed: int) -> Weather:
    """Mostly clear days, some partly or mostly cloudy, rarely overcast."""
    rng = np.random.default_rng([stable_key("weather", aoi_id, seed), day.toordinal()])
    u = float(rng.random())
    haze = float(rng.beta(1.5, 4.0))
    if u < 0.68:
        cover = 0.0
    elif u < 0.78:
        cover = float(rng.uniform(0.005, 0.03))
    elif u < 0.9:
        cover = float(rng.uniform(0.1, 0.5))
    elif u < 0.97:
        cover = float(rng.uniform(0.5, 0.9))
    else:
        cover = 0.97
    return Weather(round(cover, 3), round(haze, 3))


def plan_day(aoi: AOI, day: dt.date, seed: int = 2023) -> DayPlan:
    """The plan of one day for any AOI (Tumangang gets its 2023 story)."""
    if aoi.id == "tumangang" and TUMANGANG_FIRST <= day <= TUMANGANG_LAST:
        return tumangang_day(aoi, day, seed)
    trains = quiet_trains(aoi, day, seed)
    main = passing_train(aoi, day, seed)
    if main is not None:
        trains.append(main)
    return DayPlan(day, tuple(trains), generic_weather(aoi.id, day, seed))


def plan_season(aoi: AOI, start: dt.date, end: dt.date, seed: int = 2023) -> list[DayPlan]:
    """One plan per day from `start` to `end` inclusive."""
    days = (end - start).days + 1
    return [plan_day(aoi, start + dt.timedelta(days=i), seed) for i in range(max(days, 0))]


# --- Tumangang, September–October 2023 -------------------------------------------------------
# Analysts saw the yard empty on 09-14, two lines of cars (~200 m and ~300 m) on 09-22 and ~73
# cars on 10-05, against "~20 at most" in five years. Lines grow by whole blocks arriving.
TUMANGANG_FIRST = dt.date(2023, 9, 1)
TUMANGANG_LAST = dt.date(2023, 10, 10)
TUMANGANG_EMPTY = dt.date(2023, 9, 14)
TUMANGANG_LOADED = dt.date(2023, 9, 22)
TUMANGANG_PEAK = dt.date(2023, 10, 5)
_LINE_ROLES = ("t3", "t4", "t2", "t5", "t1")  # preferred sidings, in order of filling
_LINE_START_M = {"t3": 380.0, "t4": 300.0, "t2": 420.0, "t5": 350.0, "t1": 300.0}
# (first day, siding, cars on that siding from that day on)
_SURGE: tuple[tuple[tuple[int, int], str, int], ...] = (
    ((9, 22), "t3", 14),
    ((9, 22), "t4", 20),
    ((9, 24), "t2", 8),
    ((9, 26), "t3", 21),
    ((9, 28), "t2", 16),
    ((9, 30), "t5", 6),
    ((10, 2), "t4", 24),
    ((10, 2), "t5", 9),
    ((10, 4), "t5", 12),
    ((10, 7), "t5", 8),
    ((10, 8), "t1", 6),
    ((10, 10), "t2", 11),
)
# Cloudy acquisitions (target scene cloud fraction); the three key dates stay clear.
_CLOUDS: dict[tuple[int, int], float] = {
    (9, 3): 0.35,
    (9, 5): 0.02,
    (9, 7): 0.65,
    (9, 10): 0.15,
    (9, 17): 0.97,
    (9, 19): 0.3,
    (9, 25): 0.01,
    (9, 27): 0.55,
    (9, 30): 0.2,
    (10, 3): 0.45,
    (10, 8): 0.8,
    (10, 9): 0.02,
}


def _surge_sidings(aoi: AOI) -> dict[str, Track]:
    """Map the plan's siding roles onto the AOI's tracks (by id where they exist)."""
    sidings = [t for t in aoi.tracks if not is_main_line(t)]
    by_id = {t.id: t for t in sidings}
    spare = [t for t in sidings if t.id not in _LINE_ROLES]
    roles: dict[str, Track] = {}
    for role in _LINE_ROLES:
        if role in by_id:
            roles[role] = by_id[role]
        elif spare:
            roles[role] = spare.pop(0)
    return roles


def tumangang_day(aoi: AOI, day: dt.date, seed: int) -> DayPlan:
    """The 2023 story: quiet baseline, empty on 09-14, two long lines from 09-22, ~73 by 10-05."""
    key = (day.month, day.day)
    rng = np.random.default_rng([stable_key("tumangang-weather", seed), day.toordinal()])
    weather = Weather(_CLOUDS.get(key, 0.0), round(float(rng.beta(1.5, 4.0)), 3))
    if day == TUMANGANG_EMPTY:
        return DayPlan(day, (), weather)
    trains: list[Train] = []
    if day < TUMANGANG_LOADED:
        trains = quiet_trains(aoi, day, seed, max_cars=20, min_cars=5)
    else:
        counts: dict[str, int] = {}
        for (month, dom), role, n in _SURGE:
            if dt.date(day.year, month, dom) <= day:
                counts[role] = n
        roles = _surge_sidings(aoi)
        for role, n in counts.items():
            track = roles.get(role)
            if track is None:
                continue
            crng = np.random.default_rng([stable_key("tumangang-surge", seed), _LINE_ROLES.index(role)])
            cars = make_cars(crng, 24, aoi.car_pitch_m, ["boxcar", "gondola", "flatcar", "tank"])[:n]
            start = _LINE_START_M.get(role, END_MARGIN_M)
            train = Train(track.id, start, cars)
            while train.cars and train.end_m > track.length_m - END_MARGIN_M:
                start = max(END_MARGIN_M, track.length_m - END_MARGIN_M - train.length_m)
                train = Train(track.id, start, train.cars if start > END_MARGIN_M else train.cars[:-1])
            if train.cars:
                trains.append(train)
    # No through trains in this story: the analysts' "5–20 cars" baseline is the whole facility,
    # and a through train on the main line would be a surge of its own (the generic plan has them).
    return DayPlan(day, tuple(trains), weather)
