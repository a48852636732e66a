"""Score the detection core against the simulator's truth, per kind of scene, through the
`railwatch detect` contract (the same `detect_files` the CLI runs).

    python bench/detect_accuracy.py                 # 3 m Tumangang + 0.5 m small yard, 10 per kind
    python bench/detect_accuracy.py --per-kind 4 --gsd 3

Cases are rendered once into --cache (deterministic; reruns reuse them). Each scene is measured
with an empty-yard reference of another date (`--reference`) and from the image alone. Targets
(issue 3): at 3 m, occupied metres within ±10 % (or ±20 m) and cars within ±15 % (or ±2) on
≥ 90 % of clear, dense, misregistered and low-contrast scenes; empty yards ≤ 2 cars; cloudy
scenes never more cars than stand in the clear part; at 0.5 m every track within ±1 car on ≥ 90 %
of scenes; the interval holds the truth on ≥ 85 % of scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from railwatch.aoi import load_aoi
from railwatch.core import DetectorParams
from railwatch.detect import detect_files
from railwatch.simulate.cases import CASE_KINDS, publish_case

ROOT = Path(__file__).resolve().parents[1]
SETS = {  # gsd → (AOI file, scene size in metres)
    3.0: (ROOT / "aois" / "tumangang.geojson", (2600.0, 2600.0)),
    0.5: (ROOT / "bench" / "aois" / "small-yard.geojson", (620.0, 420.0)),
}
REFERENCE_INDEX = 1000  # the empty case used as every scene's reference
COUNT_KINDS = ("clear", "dense", "misregistered", "low_contrast")
# below this the shadow of a car reaches the second siding (4.5 m car, 5.3 m spacing): the
# table also shows how the scenes with a higher sun fare
HIGH_SUN_DEG = 40.0


@dataclass
class Score:
    """One scene measured one way, against its truth."""

    kind: str
    index: int
    truth_cars: int
    truth_clear_cars: int
    truth_occupied: float
    cars: int
    low: int
    high: int
    occupied: float
    track_errors: list[int] = field(default_factory=list)
    seconds: float = 0.0
    sun_elevation: float = 90.0

    @property
    def occupied_ok(self) -> bool:
        return abs(self.occupied - self.truth_occupied) <= max(0.10 * self.truth_occupied, 20.0)

    @property
    def cars_ok(self) -> bool:
        return abs(self.cars - self.truth_cars) <= max(0.15 * self.truth_cars, 2.0)

    @property
    def in_interval(self) -> bool:
        return self.low <= self.truth_cars <= self.high

    def passed(self, gsd: float) -> bool:
        if self.kind == "empty":
            return self.cars <= 2
        if self.kind == "cloudy":
            return self.cars <= self.truth_clear_cars
        if gsd <= 1.0:
            return all(abs(e) <= 1 for e in self.track_errors)
        return self.occupied_ok and self.cars_ok

    def describe(self) -> str:
        return (f"#{self.index}: truth {self.truth_cars} cars ({self.truth_clear_cars} clear) "
                f"{self.truth_occupied:.0f} m, got {self.cars} [{self.low}-{self.high}] "
                f"{self.occupied:.0f} m")


def score(kind: str, index: int, truth: dict[str, Any], result: dict[str, Any],
          seconds: float, sun_elevation: float) -> Score:
    by_id = {t["id"]: t for t in result["tracks"]}
    errors = [by_id[t["id"]]["cars"] - t["cars"] for t in truth["tracks"] if t["id"] in by_id]
    total = result["total"]
    return Score(kind, index, truth["total"]["cars"], truth["total"]["cars_clear"],
                 truth["total"]["occupied_m"], total["cars"], total["cars_low"],
                 total["cars_high"], total["occupied_m"], errors, seconds, sun_elevation)


def scene_sun(scene: Any) -> tuple[float, float]:
    """The sun (azimuth, elevation) a user would read from the scene's metadata (STAC Item)."""
    item = json.loads(Path(scene.item_path).read_text(encoding="utf-8"))
    return float(item["properties"]["view:sun_azimuth"]), float(item["properties"]["view:sun_elevation"])


def run_set(gsd: float, per_kind: int, cache: Path, kinds: list[str], modes: list[str],
            console: Console, params: DetectorParams) -> dict[str, list[Score]]:
    aoi_path, size = SETS[gsd]
    aoi = load_aoi(aoi_path)
    out = cache / f"{aoi.id}-{gsd:g}m"
    reference = publish_case(aoi, out, "empty", REFERENCE_INDEX, gsd, scene_size_m=size)
    scores: dict[str, list[Score]] = defaultdict(list)
    for kind in kinds:
        for index in range(per_kind):
            scene = publish_case(aoi, out, kind, index, gsd, scene_size_m=size)
            for mode in modes:
                ref = (str(reference.image_path), str(reference.mask_path)) if mode != "image" \
                    else (None, None)
                azimuth, elevation = scene_sun(scene)
                sun = (azimuth, elevation) if mode == "reference+sun" else (None, None)
                started = time.perf_counter()
                result = detect_files(aoi_path, str(scene.image_path), ref[0],
                                      str(scene.mask_path), ref[1], params, *sun)
                scores[mode].append(score(kind, index, scene.truth, result,
                                          time.perf_counter() - started, elevation))
        console.log(f"{aoi.id} {gsd:g} m: {kind} done")
    return scores


def table(gsd: float, mode: str, scores: list[Score]) -> tuple[Table, dict[str, float]]:
    title = {"reference": "with an empty reference", "image": "image only",
             "reference+sun": "with an empty reference and the sun's azimuth and elevation"}[mode]
    t = Table(title=f"{gsd:g} m GSD, {title}")
    for col in ("kind", "scenes", "pass", f"pass, sun ≥ {HIGH_SUN_DEG:g}°", "cars MAE", "cars bias",
                "occupied MAE m", "interval holds", "s/scene"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    rates: dict[str, float] = {}
    by_kind: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        by_kind[s.kind].append(s)
    for kind, group in by_kind.items():
        n = len(group)
        passed = sum(s.passed(gsd) for s in group)
        rates[kind] = passed / n
        high = [x for x in group if x.sun_elevation >= HIGH_SUN_DEG]
        t.add_row(kind, str(n), f"{passed}/{n} ({100 * passed / n:.0f}%)",
                  f"{sum(x.passed(gsd) for x in high)}/{len(high)}",
                  f"{sum(abs(s.cars - s.truth_cars) for s in group) / n:.1f}",
                  f"{sum(s.cars - s.truth_cars for s in group) / n:+.1f}",
                  f"{sum(abs(s.occupied - s.truth_occupied) for s in group) / n:.0f}",
                  f"{100 * sum(s.in_interval for s in group) / n:.0f}%",
                  f"{sum(s.seconds for s in group) / n:.2f}")
    rates["interval"] = sum(s.in_interval for s in scores) / max(len(scores), 1)
    return t, rates


def verdict(gsd: float, rates: dict[str, float]) -> list[tuple[str, bool]]:
    """(target, met) pairs for one table."""
    if gsd <= 1.0:
        checks = [(f"{k}: all tracks ±1 car on ≥90%", rates[k] >= 0.9)
                  for k in COUNT_KINDS if k in rates]
    else:
        checks = [(f"{k}: metres and cars on ≥90%", rates[k] >= 0.9) for k in COUNT_KINDS
                  if k in rates]
    if "empty" in rates:
        checks.append(("empty: ≤2 cars on all", rates["empty"] >= 1.0))
    if "cloudy" in rates:
        checks.append(("cloudy: never more than the clear part holds", rates["cloudy"] >= 1.0))
    checks.append(("interval holds on ≥85%", rates["interval"] >= 0.85))
    return checks


def param_value(item: str) -> tuple[str, Any]:
    """NAME=VALUE as a DetectorParams field of the default's type (`bool("False")` is True, so
    booleans are spelt out)."""
    name, text = item.split("=", 1)
    default = getattr(DetectorParams(), name)
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SystemExit(f"--param {item}: {name} is true or false")
        return name, text.lower() in ("true", "1", "yes")
    return name, type(default)(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=10, help="scenes per kind and GSD")
    parser.add_argument("--gsd", type=float, nargs="+", default=[3.0, 0.5], choices=sorted(SETS))
    parser.add_argument("--kinds", nargs="+", default=list(CASE_KINDS), choices=CASE_KINDS)
    parser.add_argument("--modes", nargs="+", default=["reference", "image"],
                        choices=["reference", "reference+sun", "image"],
                        help="with an empty reference, also given the sun azimuth, image only")
    parser.add_argument("--cache", type=Path, default=ROOT / ".railwatch" / "bench-cases")
    parser.add_argument("--json", type=Path, help="also write every score here")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a DetectorParams field (repeatable), to try a setting")
    args = parser.parse_args(argv)
    params = DetectorParams(**dict(param_value(item) for item in args.param))
    console = Console(width=max(Console().width, 120))
    summary: list[str] = []
    everything: dict[str, Any] = {}
    all_met = True
    for gsd in args.gsd:
        scores = run_set(gsd, args.per_kind, args.cache, args.kinds, args.modes, console, params)
        for mode, group in scores.items():
            t, rates = table(gsd, mode, group)
            console.print(t)
            for s in group:
                if not s.passed(gsd):
                    console.print(f"  failed {s.kind} {s.describe()}", highlight=False)
            checks = verdict(gsd, rates)
            met = all(ok for _, ok in checks)
            if mode != "image":  # the targets are set for measuring with a reference
                all_met &= met
            missed = [name for name, ok in checks if not ok]
            outcome = "all targets met" if met else "missed: " + "; ".join(missed)
            summary.append(f"{gsd:g} m {mode}: {outcome}")
            everything[f"{gsd:g}m-{mode}"] = [s.__dict__ for s in group]
    for line in summary:
        console.print(line)
    console.print(f"summary: {'targets met' if all_met else 'targets NOT met'} (with a reference)")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
