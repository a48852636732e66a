"""Soak: many AOIs × many days, once fault-free and once with transient faults, and the final
counts compared row by row.

The simulated season is rendered once and served as a static STAC collection over HTTP on
loopback (tests/servers.py RangeFileServer); every AOI is a copy of the demo AOI (own id, same
rails), so every AOI reads every day's scene. Both runs are `railwatch backfill` in a
subprocess, as a user runs it. In the faulty run the file server answers --fault-rate of the
scene reads (GeoTIFF range requests) with 503; the run is repeated while scenes are left
failed (at most --reruns times). Reported: AOI-scenes processed and failed, faults injected,
reruns, wall time, AOI-scenes/s, peak RSS; then the counts tables row by row (lost,
duplicated, changed).

Run: python bench/soak.py [--aois 50] [--days 60] [--fault-rate 0.05] [--cache DIR]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from backfill_bench import FIRST, prepare  # noqa: E402  (the same season and AOI copies)

from tests.cli_runs import cli_env  # noqa: E402
from tests.faultkit import World, compare  # noqa: E402
from tests.servers import RangeFileServer  # noqa: E402


class Faults:
    """Answers a share of the GeoTIFF reads with 503, reproducibly (seeded), when armed."""

    def __init__(self, rate: float, seed: int = 7) -> None:
        self.rate, self.armed, self.injected = rate, False, 0
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def __call__(self, path: str) -> int | None:
        if not self.armed or not path.split("?", 1)[0].endswith(".tif"):
            return None
        with self.lock:
            if self.random.random() >= self.rate:
                return None
            self.injected += 1
        return 503


def backfill(home: Path, aoi_dir: Path, catalog: str, days: int) -> tuple[dict[str, int], float]:
    """One `railwatch backfill` over the season: (its scene numbers, wall seconds)."""
    env = cli_env(home) | {"RAILWATCH_AOI_DIR": str(aoi_dir), "RAILWATCH_CATALOGS": f'["{catalog}"]',
                            "GDAL_HTTP_RETRY_DELAY": "0.2"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "railwatch.cli", "backfill", "--start", str(FIRST),
                           "--end", str(FIRST + timedelta(days=days - 1))],
                          env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    match = re.search(r"(\d+) processed, (\d+) failed", proc.stdout)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"railwatch backfill failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return {"processed": int(match[1]), "failed": int(match[2])}, seconds


def peak_rss_mb() -> float:
    """The largest resident set of any finished child process tree (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aois", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "railwatch-bench")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=160)
    root = Path(tempfile.mkdtemp(prefix="railwatch-soak-"))
    aoi_dir = prepare(args.cache, root / "aois-home", args.aois, args.days)
    faults = Faults(args.fault_rate)
    server = RangeFileServer(args.cache / f"sim-{args.days}" / "simulator" / "tumangang", refuse=faults)
    catalog = f"{server.url}/collection.json"
    rows = []
    try:
        for name, armed in (("fault-free", False), (f"{args.fault_rate:.0%} of scene reads → 503", True)):
            home = root / ("clean" if not armed else "faulty")
            faults.armed = armed
            scenes, seconds = backfill(home, aoi_dir, catalog, args.days)
            reruns = 0
            while scenes["failed"] and reruns < args.reruns:
                reruns += 1
                again, more = backfill(home, aoi_dir, catalog, args.days)
                scenes["processed"] += again["processed"]
                scenes["failed"] = again["failed"]
                seconds += more
            rows.append((name, home, scenes, reruns, seconds, faults.injected if armed else 0))
            console.print(f"{name}: {scenes} in {seconds:.0f} s")
    finally:
        server.stop()

    table = Table(title=f"soak: {args.aois} AOIs × {args.days} days ({args.aois * args.days} AOI-scenes), "
                        "railwatch backfill in a subprocess")
    for column in ("run", "processed", "left failed", "faults injected", "reruns", "wall s",
                   "AOI-scenes/s"):
        table.add_column(column, justify="right")
    for name, _, scenes, reruns, seconds, injected in rows:
        table.add_row(name, str(scenes["processed"]), str(scenes["failed"]), str(injected), str(reruns),
                      f"{seconds:.0f}", f"{scenes['processed'] / seconds:.1f}")
    console.print(table)
    console.print(f"peak RSS of any process of the runs: {peak_rss_mb():.0f} MB")
    worlds = [World(home, {"RAILWATCH_HOME": str(home), "RAILWATCH_AOI_DIR": str(aoi_dir)})
              for _, home, *_ in rows]
    diff = compare(worlds[0].counts(), worlds[1].counts())
    console.print(f"counts, faulty vs fault-free, row by row: {diff.rows} rows, {diff.lost} lost, "
                  f"{diff.duplicated} duplicated, {diff.changed} changed → "
                  f"{'EQUAL' if diff.exact else 'DIFFERENT'}")
    return 0 if diff.exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
