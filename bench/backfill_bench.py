"""How fast is a backfill, and what do Prefect + Dask cost over a plain Python loop?

The same work is done twice, each in a fresh process with its own RAILWATCH_HOME: (1) the
`railwatch-backfill` flow (ephemeral Prefect API, a LocalCluster of --workers processes, date
chunks, packs of AOI-scenes) and (2) a plain loop that calls the same railwatch functions one
scene after another in one process. Work: --aois copies of the demo AOI (own ids, same rails)
over --days simulated days (rendered once into --cache, shared through symlinks), i.e.
aois × days AOI-scenes. Reported: wall time, AOI-scenes/s, the ratio, peak RSS of the largest
process, Prefect task runs, and a projection to the issue's 1-year × 20-AOI size (7,300
AOI-scenes) from the measured rate — a projection, not a measurement — twice: scaling
everything with the scenes, and counting the AOIs' reference composites once per AOI (they are
built only until an AOI has its first clear scenes, so a short run overstates their share).
Prefect's own database is created before the flow is timed (once per install, ≈ 25 s of
migrations here; printed).

Run: python bench/backfill_bench.py [--aois 6] [--days 6] [--workers 2] [--cache DIR]
[--runs plain prefect] (one of them alone: no ratio)
(the issue's full size: --aois 20 --days 365, ≈ 1 hour for both runs here; rendering the year ≈ 2 min)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
FIRST = date(2023, 9, 8)
FULL_SIZE, FULL_AOIS = 7300, 20  # the 1-year x 20-AOI backfill


def prepare(cache: Path, home: Path, aois: int, days: int) -> Path:
    """Render the season once; an AOI folder of `aois` copies of the demo AOI; the AOI dir."""
    sim = cache / f"sim-{days}"
    if not (sim / "simulator" / "tumangang" / "collection.json").is_file():
        last = FIRST + timedelta(days=days - 1)
        subprocess.run([sys.executable, "-m", "railwatch.cli", "simulate", "--start", str(FIRST),
                        "--end", str(last), "--scene-km", "4", "3.6"], cwd=REPO, check=True,
                       env={**os.environ, "RAILWATCH_HOME": str(sim),
                            "RAILWATCH_AOI_DIR": str(REPO / "aois")})
    doc = json.loads((REPO / "aois" / "tumangang.geojson").read_text())
    aoi_dir = home / "aois"
    aoi_dir.mkdir(parents=True)
    (home / "simulator").mkdir()
    for k in range(aois):
        doc["features"][0]["properties"]["id"] = f"yard{k:02d}"
        (aoi_dir / f"yard{k:02d}.geojson").write_text(json.dumps(doc))
        (home / "simulator" / f"yard{k:02d}").symlink_to(sim / "simulator" / "tumangang")
    return aoi_dir


def machine_ms(repeats: int = 7) -> float:
    """Milliseconds this machine takes for one fixed piece of the pipeline's own CPU work (a 3 m
    clip's COG encoded and decoded, a running median along profile-sized rows), the median of
    `repeats`: runs made on different days compare by it (this shared machine's speed varies
    by up to 40 % from one day to another)."""
    import numpy as np
    from scipy import ndimage

    from railwatch.adapters.raster import decode_raster, encode_cog
    from railwatch.aoi import load_aoi
    from railwatch.grid import aoi_grid

    grid = aoi_grid(load_aoi(REPO / "aois" / "tumangang.geojson"))
    rng = np.random.default_rng(7)
    clip = rng.integers(800, 1600, (4, grid.height, grid.width)).astype(np.uint16)
    rows = rng.normal(1000.0, 30.0, (7, 3000, 4))
    times = []
    decode_raster(encode_cog(clip, grid, nodata=0))  # GDAL's first use sets it up: not timed
    for _ in range(repeats):
        started = time.perf_counter()
        decode_raster(encode_cog(clip, grid, nodata=0))
        ndimage.median_filter(rows, size=(1, 61, 1))
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[repeats // 2]


def peak_rss_mb() -> float:
    """Largest resident set of this process or any finished child (Linux: KiB)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_prefect(days: int) -> dict[str, Any]:
    """The backfill flow, as `railwatch backfill` runs it."""
    from flows.backfill import BackfillRequest, backfill

    started = time.perf_counter()
    summary = backfill(BackfillRequest(start=FIRST, end=FIRST + timedelta(days=days - 1)))
    seconds = time.perf_counter() - started
    return {"scenes": summary.processed, "seconds": seconds, "task_runs": count_task_runs(),
            "stages": summary.seconds, "work": summary.scene_seconds,
            "reference_s": summary.seconds.get("reference", 0.0)}


def count_task_runs() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the REST count (the client has no method)
        return int(client._client.post("/task_runs/count", json={}).json())


def run_plain(days: int) -> dict[str, Any]:
    """The same steps in a plain loop: no Prefect, no Dask, one process; then what the flow
    publishes (alert episodes, quicklooks, the plot), minus Prefect's events and artifacts."""
    from railwatch.adapters.alerts import AlertStore
    from railwatch.adapters.catalogs import open_catalog
    from railwatch.adapters.counts import CountsStore
    from railwatch.adapters.store import open_store
    from railwatch.alerts import flag_stored_series
    from railwatch.aoi import load_registry
    from railwatch.background import update_model
    from railwatch.core import DETECTOR_VERSION
    from railwatch.grid import aoi_grid
    from railwatch.ingest import clip_scene
    from railwatch.measure import detect_scenes, ensure_reference, load_reference, measure_clip
    from railwatch.polling import discover
    from railwatch.publish import store_series_plot, update_alerts
    from railwatch.quicklook import clip_grid
    from railwatch.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    db, store = CountsStore(settings.db_url), open_store(settings.store_url)
    catalogs = [open_catalog(s, settings.simulator_dir) for s in settings.catalogs]
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC)
    done, reference_s = 0, 0.0
    aois = load_registry(settings.aoi_dir, settings.max_aoi_km2)
    for aoi in aois:
        grid = aoi_grid(aoi, gsd_m=aoi.gsd_m, buffer_m=settings.clip_buffer_m)
        discover(aoi, catalogs, db, start, start + timedelta(days=days))
        clips = [clip_scene(s, aoi, grid, store) for s in db.pending_scenes(aoi.id)]
        building = time.perf_counter()
        ensure_reference(aoi, grid, clips, store)
        reference_s += time.perf_counter() - building
        reference = load_reference(aoi, grid, store)
        measured = [measure_clip(c, aoi, grid, store, reference).clip for c in clips]
        db.mark_scenes("measured", clips=measured)
        history = db.measured_clips(aoi.id)
        update_model(aoi.id, measured, history, store)
        counts, _ = detect_scenes(aoi, grid, measured, history, store)
        db.upsert_counts(counts)
        flag_stored_series(aoi, db, DETECTOR_VERSION)
        done += len(counts)
    alerts = AlertStore(db)
    for aoi in aois:  # what the flow publishes
        update = update_alerts(aoi, clip_grid(aoi, settings.clip_buffer_m), db, alerts, store,
                               DETECTOR_VERSION, [])
        if update.rows:
            store_series_plot(aoi, update.rows, alerts, store, DETECTOR_VERSION)
    return {"scenes": done, "seconds": time.perf_counter() - started, "task_runs": 0,
            "reference_s": reference_s}


def child(mode: str, days: int) -> None:
    result = (run_prefect if mode == "prefect" else run_plain)(days)
    print(json.dumps(result | {"peak_mb": peak_rss_mb()}))


def create_prefect_database(env: dict[str, str]) -> float:
    """Start and stop the ephemeral Prefect API once in this environment; seconds taken. Its first
    start creates Prefect's SQLite database (≈ 25 s of migrations here), which an install does
    once, not every backfill: the timed run then starts the API as every later run does."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from prefect.server.api.server import SubprocessASGIServer\n"
                    "server = SubprocessASGIServer()\nserver.start()\nserver.stop()"],
                   env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return time.perf_counter() - started


def measure(mode: str, args: argparse.Namespace, aois_dir: Path, home: Path) -> dict[str, Any]:
    env = {**os.environ, "RAILWATCH_HOME": str(home), "RAILWATCH_AOI_DIR": str(aois_dir),
           "RAILWATCH_DASK_WORKERS": str(args.workers), "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(REPO),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    first_start = create_prefect_database(env) if mode == "prefect" else None
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--days", str(args.days)],
                          env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result | {"process_seconds": time.perf_counter() - started, "first_start_s": first_start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aois", type=int, default=6)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=REPO / ".railwatch" / "bench")
    parser.add_argument("--runs", nargs="+", choices=["plain", "prefect"], default=["plain", "prefect"],
                        help="which runs (default both; the ratio needs both in the same run)")
    parser.add_argument("--child", choices=["prefect", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days)
        return
    calibration = machine_ms()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for mode in ("plain", "prefect"):
            if mode not in args.runs:
                continue
            home = Path(tmp) / mode
            results[mode] = measure(mode, args, prepare(args.cache, home, args.aois, args.days), home)
    print_table(args, results, calibration)


def projected_min(result: dict[str, Any], aois: int) -> float:
    """Minutes for FULL_SIZE AOI-scenes of FULL_AOIS AOIs when an AOI's reference composite is
    a cost per AOI, not per scene: it is built (and rebuilt) only until the AOI has its first
    clear scenes, which a short run covers as a year does; the rest scales with the scenes."""
    per_scene = (float(result["seconds"]) - float(result["reference_s"])) / int(result["scenes"])
    return (FULL_SIZE * per_scene + FULL_AOIS * float(result["reference_s"]) / aois) / 60


def print_table(args: argparse.Namespace, results: dict[str, dict[str, Any]], calibration: float) -> None:
    plain, flow = results.get("plain"), results.get("prefect")
    table = Table(title=f"backfill: {args.aois} AOIs × {args.days} days = {args.aois * args.days} "
                        f"AOI-scenes, {args.workers} Dask workers, {os.cpu_count()} CPUs (shared)")
    for column in ("run", "AOI-scenes", "wall s", "process s", "AOI-scenes/s", "× plain",
                   "task runs", "peak RSS MB", "reference s", f"projected {FULL_SIZE} min",
                   "… reference per AOI"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r in (("plain Python loop", plain), ("Prefect flow + Dask", flow)):
        if r is None:
            continue
        rate = r["scenes"] / r["seconds"]
        ratio = f"{r['seconds'] / plain['seconds']:.2f}" if plain else "not run"
        table.add_row(name, str(r["scenes"]), f"{r['seconds']:.1f}", f"{r['process_seconds']:.1f}",
                      f"{rate:.2f}", ratio, str(r["task_runs"] or "-"),
                      f"{r['peak_mb']:.0f}", f"{r['reference_s']:.1f}", f"{FULL_SIZE / rate / 60:.0f}",
                      f"{projected_min(r, args.aois):.0f}")
    console = Console(width=160)
    console.print(table)
    console.print("reference s: building the AOIs' reference composites (wall); the last column "
                  f"counts them once per AOI for {FULL_AOIS} AOIs, as a year's run builds them, "
                  f"instead of scaling them with the scenes (the column before)")
    console.print(f"machine: {calibration:.0f} ms for the calibration workload before the runs (a 3 m "
                  "clip's COG encoded and decoded, a running median): compare runs of different "
                  "days by it")
    if flow is None:
        return
    stages = ", ".join(f"{k} {v:.1f}" for k, v in flow.get("stages", {}).items())
    work = ", ".join(f"{k} {v:.1f}" for k, v in flow.get("work", {}).items())
    console.print(f"flow stages, wall s: {stages}; work inside the tasks, s summed over workers: {work}")
    console.print(f"Prefect's database was created before the timed flow run (the API's first start, "
                  f"once per install: {flow['first_start_s']:.1f} s); the flow's time includes starting "
                  "the ephemeral API and the LocalCluster, the loop's starts after its imports.")


if __name__ == "__main__":
    main()
