"""The benchmark's case kinds: each kind really is what it says, and is the same every time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from railwatch.aoi import load_aoi
from railwatch.simulate.cases import CASE_KINDS, GREY_CARS, plan_case

ROOT = Path(__file__).resolve().parents[1]
AOI = load_aoi(ROOT / "aois" / "tumangang.geojson")


def test_each_kind_has_its_character() -> None:
    for index in range(3):
        plans = {kind: plan_case(AOI, kind, index) for kind in CASE_KINDS}
        assert plans["empty"][0].n_cars == 0
        assert plans["dense"][0].n_cars > 3 * plans["clear"][0].n_cars
        assert plans["clear"][0].weather.cloud_cover == 0.0
        assert plans["cloudy"][0].weather.cloud_cover >= 0.25
        dx, dy = plans["misregistered"][1].shift_m
        assert 6.0 <= (dx * dx + dy * dy) ** 0.5 <= 12.0
        grey = plans["low_contrast"][0]
        assert grey.n_cars > 0 and grey.weather.haze >= 0.6
        assert {car.type for t in grey.trains for car in t.cars} <= set(GREY_CARS)


def test_cases_are_deterministic_and_distinct() -> None:
    a, b = plan_case(AOI, "clear", 4), plan_case(AOI, "clear", 4)
    assert a == b
    ids = {plan_case(AOI, kind, i)[1].scene_id for kind in CASE_KINDS for i in range(3)}
    assert len(ids) == 3 * len(CASE_KINDS)
    with pytest.raises(ValueError, match="unknown case kind"):
        plan_case(AOI, "foggy", 0)


@pytest.mark.slow
def test_accuracy_bench_prints_its_tables(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detect_accuracy.py"), "--per-kind", "1", "--gsd", "0.5",
         "--kinds", "empty", "clear", "--cache", str(tmp_path), "--json", str(tmp_path / "s.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0.5 m GSD, with an empty reference" in proc.stdout
    assert "0.5 m GSD, image only" in proc.stdout
    assert "summary:" in proc.stdout
    assert (tmp_path / "s.json").stat().st_size > 0
