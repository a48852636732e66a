"""How fast is detection next to the I/O it sits beside? (issue: ≥ 200 AOI-scenes/s per core)

Builds realistic clips (the built-in simulator's Tumangang season read onto a size × size px grid,
4 bands, uint16 scale, float32, with clear masks), a reference composite and a history background,
then times in one process on one thread:

  (a) decode   the same clip from an in-memory COG (encode_cog → rasterio MemoryFile read): the
               I/O step detection sits next to;
  (b) detect_image with a reference;
  (c) detect_image without a reference (image only);
  (d) the pipeline's path: estimate_alignment + extract_profiles (railwatch.measure.measure_clip)
      and measure_scene against a history background (railwatch.measure.detect_scenes);
  (e) background_from_history over the history profiles (a median sorted from scratch);
  (f) the background model's 60-scene window one scene on (railwatch.core.background, as
      detect_scenes asks it scene after scene: the window's values kept sorted and moved on).

Run: python bench/detect_speed.py [--scenes 50] [--size 700] [--days 12]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one thread, so "per core" means it

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.scenes import Season, load_season  # noqa: E402
from railwatch.adapters.raster import decode_raster, encode_cog  # noqa: E402
from railwatch.core import (  # noqa: E402
    DetectorParams,
    background_from_history,
    build_composite,
    detect_image,
    estimate_alignment,
    extract_profiles,
    measure_scene,
)
from railwatch.core.background import (  # noqa: E402
    BackgroundParams,
    SceneProfiles,
    background_at,
    build_model,
)
from railwatch.core.registration import ReferenceTiles  # noqa: E402

TARGET_PER_S = 200.0


@dataclass
class Stage:
    name: str
    ms: list[float]  # wall clock per call
    cpu_ms: list[float]  # process CPU time per call (what a core spends; robust on a busy box)
    peak_mb: float
    rss_mb: float

    @property
    def median(self) -> float:
        return float(np.median(self.ms))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.ms, 90))

    @property
    def cpu_median(self) -> float:
        return float(np.median(self.cpu_ms))


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_stage(name: str, call: Callable[[int], Any], scenes: int) -> Stage:
    """Time `call(i)` for i in 0..scenes-1 (after one warm-up), then its peak allocation."""
    call(0)
    ms, cpu_ms = [], []
    for i in range(scenes):
        started, cpu_started = time.perf_counter(), time.process_time()
        call(i)
        ms.append((time.perf_counter() - started) * 1e3)
        cpu_ms.append((time.process_time() - cpu_started) * 1e3)
    tracemalloc.start()
    tracemalloc.reset_peak()
    call(0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Stage(name, ms, cpu_ms, peak / 2**20, max_rss_mb())


def stages(season: Season, scenes: int) -> list[Stage]:
    clips = season.clips
    gsd, pitch, tracks = season.grid.gsd_m, season.aoi.car_pitch_m, season.tracks
    ranked = sorted(clips, key=lambda c: -float(c.valid.mean()))
    clear = ranked[: max(1, min(3, len(ranked)))]
    reference, ref_valid, _ = build_composite(
        [c.image for c in clear], [c.valid for c in clear],
        params=DetectorParams(composite_iterations=1),
    )
    cogs = [encode_cog(c.pixels, season.grid, nodata=0) for c in clips]
    history = []
    for c in clips:
        al = estimate_alignment(c.image, c.valid, reference, ref_valid)
        history.append(extract_profiles(c.image, c.valid, tracks, gsd, alignment=al))
    background = background_from_history(history, min_scenes=min(5, len(history)))
    if background is None:
        background = extract_profiles(reference, ref_valid, tracks, gsd)

    def clip(i: int) -> Any:
        return clips[i % len(clips)]

    def decode(i: int) -> None:
        image = decode_raster(cogs[i % len(cogs)]).astype(np.float32)
        image.sum()

    def with_reference(i: int) -> None:
        c = clip(i)
        detect_image(c.image, c.valid, tracks, gsd, pitch, reference, ref_valid,
                     sun_azimuth_deg=c.sun_azimuth, sun_elevation_deg=c.sun_elevation)

    def image_only(i: int) -> None:
        c = clip(i)
        detect_image(c.image, c.valid, tracks, gsd, pitch, sun_azimuth_deg=c.sun_azimuth,
                     sun_elevation_deg=c.sun_elevation)

    tiles = ReferenceTiles(reference, ref_valid, DetectorParams())  # as a measure task keeps

    def pipeline(i: int) -> None:
        c = clip(i)
        al = estimate_alignment(c.image, c.valid, reference, ref_valid, tiles=tiles)
        profiles = extract_profiles(c.image, c.valid, tracks, gsd, alignment=al)
        measure_scene(profiles, background, gsd, pitch, al, tracks=tracks,
                      sun_azimuth_deg=c.sun_azimuth, sun_elevation_deg=c.sun_elevation)

    def history_background(i: int) -> None:
        background_from_history(history, min_scenes=1)

    # a model of the history's profiles again and again (distinct scenes, a day apart), long
    # enough that every timed call moves the full window one scene on
    params = BackgroundParams()
    day0 = datetime(2023, 7, 1, tzinfo=UTC)
    span = params.window + scenes + 2
    model = build_model([SceneProfiles(f"bench/{k}", day0 + timedelta(days=k), 1.0, 1.0,
                                       history[k % len(history)]) for k in range(span)],
                        "bench", params, capacity=span)

    def window_on(i: int) -> None:
        background_at(model, day0 + timedelta(days=params.window + 1 + i % scenes), params)

    return [
        run_stage("(a) decode COG (I/O baseline)", decode, scenes),
        run_stage("(b) detect_image + reference", with_reference, scenes),
        run_stage("(c) detect_image, image only", image_only, scenes),
        run_stage("(d) pipeline: align+profile+measure", pipeline, scenes),
        run_stage(f"(e) history median ({len(history)} scenes)", history_background, scenes),
        run_stage(f"(f) model window one on ({params.window} scenes)", window_on, scenes),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50, help="timed calls per stage")
    parser.add_argument("--size", type=int, default=700, help="clip size in pixels (square)")
    parser.add_argument("--days", type=int, default=12, help="simulated days (distinct clips)")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "railwatch-bench-sim",
                        help="folder of simulated scenes (reused between runs)")
    args = parser.parse_args(argv)
    console = Console(width=130)
    season = load_season(max(args.days, 1), args.size, args.cache)
    c0 = season.clips[0]
    results = stages(season, max(args.scenes, 1))
    decode_ms = results[0].cpu_median
    table = Table(title=(
        f"Detection speed: {args.size}×{args.size} px, {c0.image.shape[0]} bands, "
        f"{len(season.tracks)} tracks ({sum(t.length_m for t in season.aoi.tracks):.0f} m), "
        f"{args.scenes} calls, 1 thread"
    ))
    for col in ("stage", "wall ms", "wall p90", "cpu ms", "scenes/s/core", "× decode",
                "peak MB", "max RSS MB"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in results:
        table.add_row(s.name, f"{s.median:.2f}", f"{s.p90:.2f}", f"{s.cpu_median:.2f}",
                      f"{1e3 / s.cpu_median:.0f}", f"{s.cpu_median / decode_ms:.2f}",
                      f"{s.peak_mb:.1f}", f"{s.rss_mb:.0f}")
    console.print(table)
    console.print("wall = median and p90 wall clock per call; cpu = median CPU time per call (one "
                  "thread: per core), used for scenes/s/core and × decode; peak MB = tracemalloc "
                  "peak of one call; max RSS = process so far")
    detection = results[1:4]
    slowest = max(detection, key=lambda s: s.cpu_median)
    rate = 1e3 / slowest.cpu_median
    verdict = "MET" if rate >= TARGET_PER_S else "NOT MET"
    console.print(
        f"target ≥ {TARGET_PER_S:.0f} AOI-scenes/s/core (detection, slowest of b-d: "
        f"{slowest.name.strip()}): {rate:.0f}/s → {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
