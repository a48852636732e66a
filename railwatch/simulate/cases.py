"""Scenes of one named kind (clear, dense, empty, cloudy, misregistered, low-contrast) with truth.

The season plans make realistic days; a benchmark needs every hard case often enough to score
it. `plan_case` draws one such acquisition (a day plan and a scene spec) from (AOI, kind, index,
GSD, seed) alone, so a case is the same scene whenever and wherever it is rendered;
`publish_case` renders and writes it like any simulated scene (COG, UDM2, truth, STAC Item).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np

from railwatch.aoi import AOI
from railwatch.simulate.noise import stable_key
from railwatch.simulate.publish import SimulatedScene, publish_plan
from railwatch.simulate.scene import SceneSpec, make_spec
from railwatch.simulate.season import (
    DayPlan,
    Train,
    Weather,
    _place,
    is_main_line,
    make_cars,
    quiet_trains,
)

CASE_KINDS = ("clear", "dense", "empty", "cloudy", "misregistered", "low_contrast")
GREY_CARS = ["gondola"]  # the liveries whose roofs nearly match the ballast
CASE_EPOCH = dt.date(2024, 1, 1)  # kind k's cases fall in year CASE_EPOCH.year + k
CASE_SCHEME = 2  # bump when a case's plan changes, so that cached renders are redone


def _dense_trains(aoi: AOI, rng: np.random.Generator) -> list[Train]:
    """Most sidings loaded over 50-95 % of their length, one or two trains each."""
    placed: list[Train] = []
    for track in aoi.tracks:
        if is_main_line(track) and rng.random() < 0.5:
            continue
        if rng.random() < 0.15:
            continue
        fill = float(rng.uniform(0.5, 0.95))
        n_total = max(2, int(fill * track.length_m / aoi.car_pitch_m))
        parts = [n_total] if rng.random() < 0.6 else [n_total // 2, n_total - n_total // 2]
        for n in parts:
            train = _place(rng, track, make_cars(rng, n, aoi.car_pitch_m), placed)
            if train is not None:
                placed.append(train)
    return placed


def _trains(aoi: AOI, kind: str, day: dt.date, seed: int, rng: np.random.Generator) -> list[Train]:
    if kind == "empty":
        return []
    if kind == "dense":
        return _dense_trains(aoi, rng)
    if kind == "low_contrast":
        placed: list[Train] = []
        sidings = [t for t in aoi.tracks if not is_main_line(t)] or list(aoi.tracks)
        for _ in range(int(rng.integers(2, 5))):
            track = sidings[int(rng.integers(len(sidings)))]
            cars = make_cars(rng, int(rng.integers(3, 12)), aoi.car_pitch_m, GREY_CARS)
            train = _place(rng, track, cars, placed)
            if train is not None:
                placed.append(train)
        return placed
    return quiet_trains(aoi, day, seed, max_cars=40, min_cars=4)


def _weather(kind: str, rng: np.random.Generator) -> Weather:
    haze = float(rng.beta(1.5, 4.0))
    if kind == "low_contrast":
        haze = float(rng.uniform(0.6, 1.0))
    cover = float(rng.uniform(0.25, 0.7)) if kind == "cloudy" else 0.0
    return Weather(round(cover, 3), round(haze, 3))


def plan_case(
    aoi: AOI,
    kind: str,
    index: int,
    gsd_m: float = 3.0,
    seed: int = 7,
    scene_size_m: tuple[float, float] = (3000.0, 3000.0),
) -> tuple[DayPlan, SceneSpec]:
    """The day plan and acquisition of case `index` of `kind` (see CASE_KINDS).

    Misregistered cases are shifted 6-12 m (2-4 px at 3 m); the others keep the simulator's
    usual ±6 m. Reference images for a case set are plain `empty` cases.
    """
    if kind not in CASE_KINDS:
        raise ValueError(f"unknown case kind {kind!r}; choose one of {', '.join(CASE_KINDS)}")
    key = stable_key("case", aoi.id, kind, index, gsd_m, seed)
    rng = np.random.default_rng(key)
    # every kind at every time of year (sun height, shadow length, fields), on distinct days:
    # the scene (id, sun, noise) is keyed by (AOI, seed, day)
    k = CASE_KINDS.index(kind)
    day = dt.date(CASE_EPOCH.year + k, 1, 1) + dt.timedelta(days=(index * 53 + k * 11) % 365)
    plan = DayPlan(day, tuple(_trains(aoi, kind, day, seed, rng)), _weather(kind, rng))
    spec = make_spec(aoi, plan, seed, scene_size_m, gsd_m)  # seed: the same world for all cases
    if kind == "misregistered":
        size = float(rng.uniform(6.0, 12.0))
        angle = float(rng.uniform(0.0, 2 * np.pi))
        spec = replace(spec, shift_m=(round(size * np.cos(angle), 2), round(size * np.sin(angle), 2)))
    return plan, spec


def publish_case(
    aoi: AOI,
    out_dir: Path,
    kind: str,
    index: int,
    gsd_m: float = 3.0,
    seed: int = 7,
    scene_size_m: tuple[float, float] = (3000.0, 3000.0),
) -> SimulatedScene:
    """Render case `index` of `kind` into `out_dir` (reused if already complete)."""
    plan, spec = plan_case(aoi, kind, index, gsd_m, seed, scene_size_m)
    params = {"case": kind, "index": index, "scheme": CASE_SCHEME, "seed": seed, "gsd_m": float(gsd_m),
              "scene_size_m": [float(v) for v in scene_size_m]}
    return publish_plan(aoi, plan, spec, Path(out_dir), params)
