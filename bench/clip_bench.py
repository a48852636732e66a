"""How few bytes and how little time does railwatch need to clip an AOI out of a scene on S3?

A 25 × 11 km, 4-band uint16 COG at 3 m (8333 × 3667 px, deflate + predictor 2, 512 px tiles,
≈ 240 MB; generated once into --cache) is uploaded to moto's S3 server on loopback; a 2 km AOI
lies in its middle. Measured side by side in one run:

  bytes    railwatch's clip (GDAL /vsis3/ through a counting proxy) vs the whole object, and vs
           the bytes of the COG tiles that intersect the AOI window (the physical floor);
  time     railwatch vs the naive path (the whole object downloaded, then the same clip on the local
           file): raw loopback wall time against moto and against a range-capable HTTP file
           server, and wall time over a shaped link (--bandwidth-mbps, --rtt-ms: every request
           waits one round trip, all answers share the bandwidth) in front of that file server,
           because loopback makes a whole download unrealistically cheap and moto copies the
           whole object on every GET (so moto overstates the cost of small ranged reads);
  rate     AOI-scenes/s with 1 and 2 Dask worker processes (AOIs spread over the scene), from
           moto, from a range-capable HTTP file server on loopback (reads only the ranges asked
           for, as S3 does) and from a local file;
  memory   peak RSS of a fresh process clipping the AOI out of scenes of growing width.

Run: python bench/clip_bench.py [--cache DIR] [--tiny] [--bandwidth-mbps 100 1000] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rich.console import Console
from rich.table import Table
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from railwatch.adapters.s3 import S3Config
from railwatch.adapters.store import LocalStore, S3Store
from railwatch.aoi import AOI
from railwatch.grid import AOIGrid, aoi_grid, project_to_lonlat
from railwatch.ingest import clip_scene
from railwatch.models import SceneRef
from tests.servers import CountingProxy, MotoServer, RangeFileServer, ShapedLink

CRS, GSD, LEFT, TOP = "EPSG:32652", 3.0, 615000.0, 4705002.0
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class Setup:
    width: int
    height: int
    aoi_m: float
    tile: int


FULL = Setup(8333, 3667, 2000.0, 512)
TINY = Setup(1536, 1024, 500.0, 256)


def make_scene(path: Path, width: int, height: int, tile: int) -> Path:
    """A noisy 4-band uint16 COG (noise compresses like real 12-bit data: barely); cached."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(width)
    raw = path.with_suffix(".raw.tif")
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 4, "dtype": "uint16",
               "crs": CRS, "transform": Affine(GSD, 0, LEFT, 0, -GSD, TOP), "tiled": True,
               "blockxsize": tile, "blockysize": tile, "nodata": 0}
    with rasterio.open(raw, "w", **profile) as dst:
        for row in range(0, height, tile):  # strip by strip: bounded memory
            rows = min(tile, height - row)
            dst.write(rng.integers(1, 4096, (4, rows, width), dtype="uint16"),
                      window=((row, row + rows), (0, width)))
    rasterio.shutil.copy(raw, path, driver="COG", COMPRESS="DEFLATE", PREDICTOR="2",
                         BLOCKSIZE=str(tile), NUM_THREADS="ALL_CPUS")
    raw.unlink()
    return path


def square_aoi(name: str, cx: float, cy: float, side_m: float) -> AOI:
    """An AOI: a square of `side_m` centred on (cx, cy) in the scene's UTM CRS."""
    square = box(cx - side_m / 2, cy - side_m / 2, cx + side_m / 2, cy + side_m / 2)
    return AOI(id=name, geometry=project_to_lonlat(square, CRS), tracks=())


def aois_across(setup: Setup, width: int, count: int) -> list[AOI]:
    """`count` AOIs on a diagonal across a scene `width` px wide (all inside it)."""
    w_m, h_m = width * GSD, setup.height * GSD
    margin = setup.aoi_m
    out = []
    for i in range(count):
        f = (i + 0.5) / count
        out.append(square_aoi(f"yard{i}", LEFT + margin + f * (w_m - 2 * margin),
                              TOP - margin - f * (h_m - 2 * margin), setup.aoi_m))
    return out


def scene_ref(href: str, name: str) -> SceneRef:
    return SceneRef(source="bench", scene_id=name, acquired=datetime(2023, 9, 5, tzinfo=UTC),
                    image_href=href, image_bands=(1, 2, 3, 4))


def floor_bytes(path: Path, grid: AOIGrid) -> tuple[int, int]:
    """Bytes and count of the COG's full-resolution tiles under the grid (±2 px for resampling)."""
    with rasterio.open(path) as src:
        inv = ~src.transform
        left, bottom, right, top = grid.bounds
        c0, r0 = inv * (left, top)
        c1, r1 = inv * (right, bottom)
        th, tw = src.block_shapes[0]
        rows = range(max(0, math.floor(r0 - 2)) // th, min(src.height - 1, math.ceil(r1 + 2)) // th + 1)
        cols = range(max(0, math.floor(c0 - 2)) // tw, min(src.width - 1, math.ceil(c1 + 2)) // tw + 1)
        planes = [1] if src.interleaving and src.interleaving.value == "PIXEL" else src.indexes
        total = sum(src.block_size(b, i, j) for b in planes for i in rows for j in cols)
        return total, len(rows) * len(cols)


def clip_many(endpoint: str, prefix: str, href: str, aois: list[AOI]) -> int:
    """Clip `aois` out of one scene into clips/`prefix` (in a Dask worker or a fresh process)."""
    s3 = S3Config(endpoint_url=endpoint)
    store = S3Store("clips", prefix, s3=s3)
    for aoi in aois:
        clip_scene(scene_ref(href, "scene"), aoi, aoi_grid(aoi), store, s3=s3)
    return len(aois)


def timed_clip(ref: SceneRef, aoi: AOI, grid: AOIGrid, store: S3Store) -> tuple[float, float]:
    """(wall, CPU) seconds of one clip in this process (read, warp, encode, store); CPU time is
    what the clip costs on an idle core, wall time what it took on this (shared) machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    clip_scene(ref, aoi, grid, store)
    return time.perf_counter() - wall, time.process_time() - cpu


def _proc_status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def download_then_clip(href: str, name: str, aoi: AOI, grid: AOIGrid,
                       stores: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """The naive path: urllib downloads the whole file once, then the same clip runs on the copy
    into each store. (download seconds, {store label: download + clip seconds})."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "scene.tif"
        started = time.perf_counter()
        with urllib.request.urlopen(href) as response, local.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        download_s = time.perf_counter() - started
        return download_s, {label: download_s + timed_clip(scene_ref(str(local), f"{name}-{label}"),
                                                           aoi, grid, store)[0]
                            for label, store in stores.items()}


def serve_over_link(folder: Path, mbps: float, rtt_ms: float, conn: Any) -> None:
    """A range file server behind a shaped link, in a process of its own (so that its pacing
    does not compete with the clients for this process's GIL): sends its URL, answers "gets"
    with the GETs served so far, stops on "stop"."""
    server = RangeFileServer(folder, link=ShapedLink(mbps * 1e6, rtt_ms / 1000))
    conn.send(server.url)
    while (command := conn.recv()) != "stop":
        conn.send(server.traffic.count("GET") if command == "gets" else None)
    server.stop()


@dataclass
class LinkTimes:
    ours: dict[str, float]  # store label -> railwatch seconds (median)
    naive: dict[str, float]  # store label -> naive seconds
    download_s: float
    gets: int  # railwatch's GETs per clip


def over_link(folder: Path, path: Path, aoi: AOI, grid: AOIGrid, stores: dict[str, Any], mbps: float,
              rtt_ms: float, repeats: int) -> LinkTimes:
    """One clip from `path` served over a shaped link, into each store: railwatch reads the AOI's
    window over HTTP (median of `repeats`); the naive path downloads the whole file through the
    same link with urllib (once), then runs the same clip on the copy."""
    ctx = get_context("spawn")
    conn, child_conn = ctx.Pipe()
    server = ctx.Process(target=serve_over_link, args=(folder, mbps, rtt_ms, child_conn), daemon=True)
    server.start()
    href = f"{conn.recv()}/{path.name}"
    try:
        ours: dict[str, float] = {}
        for label, store in stores.items():
            ours[label] = statistics.median(
                timed_clip(scene_ref(href, f"link{mbps:g}-{label}-{i}"), aoi, grid, store)[0]
                for i in range(repeats))
        conn.send("gets")
        gets = conn.recv() // (repeats * len(stores))
        download_s, naive = download_then_clip(href, f"link{mbps:g}-naive", aoi, grid, stores)
    finally:
        conn.send("stop")
        server.join(10)
    return LinkTimes(ours, naive, download_s, gets)


def peak_rss_clip(endpoint: str, href: str, aoi: AOI) -> tuple[float, float]:
    """(RSS before, peak RSS during) one clip in this fresh process, in MB.

    ru_maxrss survives exec on Linux (it would report the parent's peak), so the kernel's
    high-water mark is reset (clear_refs 5) and read (VmHWM) instead.
    """
    os.environ.update(FAKE_AWS)
    Path("/proc/self/clear_refs").write_text("5")
    before = _proc_status_mb("VmRSS")
    clip_many(endpoint, "peak", href, [aoi])
    return before, _proc_status_mb("VmHWM")


def throughput(endpoint: str, href: str, aois: list[AOI], workers: int) -> float:
    """AOI-scenes/s on a LocalCluster of `workers` single-threaded processes."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(os.environ.update, FAKE_AWS)
        batches = [aois[i::workers] for i in range(workers)]
        for run in ("warm-up", "timed"):  # warm-up: imports and GDAL set-up in every worker
            started = time.perf_counter()
            client.gather(client.map(clip_many, [endpoint] * workers, [f"{run}-{workers}"] * workers,
                                     [href] * workers, batches[:1] * workers if run == "warm-up" else batches,
                                     pure=False))
        return len(aois) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "railwatch-clip-bench")
    parser.add_argument("--tiny", action="store_true", help="a small scene and AOI (smoke test)")
    parser.add_argument("--bandwidth-mbps", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="the link's latency per request")
    parser.add_argument("--repeats", type=int, default=3, help="railwatch clips timed per link (median)")
    parser.add_argument("--aois", type=int, default=8, help="AOI-scenes for the throughput runs")
    args = parser.parse_args(argv)
    setup = TINY if args.tiny else FULL
    os.environ.update(FAKE_AWS)
    console = Console(width=200)

    widths = sorted({setup.width // 4, setup.width // 2, setup.width})
    scenes = {w: make_scene(args.cache / f"scene-{w}x{setup.height}-t{setup.tile}.tif", w, setup.height,
                            setup.tile) for w in widths}
    server = MotoServer().start()
    proxy = CountingProxy(server.endpoint).start()
    http: RangeFileServer | None = None
    local_clips = Path(tempfile.mkdtemp(prefix="clips-"))  # removed at the end, as the servers
    try:
        client = S3Config(endpoint_url=server.endpoint).client()
        for bucket in ("source", "clips"):
            client.create_bucket(Bucket=bucket)
        for w, path in scenes.items():
            client.upload_file(str(path), "source", f"w{w}/scene.tif")
        key, path = f"w{setup.width}/scene.tif", scenes[setup.width]
        size = path.stat().st_size
        aoi = square_aoi("yard", LEFT + setup.width * GSD / 2, TOP - setup.height * GSD / 2, setup.aoi_m)
        grid = aoi_grid(aoi)
        floor, tiles = floor_bytes(path, grid)
        store = S3Store("clips", "timed", s3=S3Config(endpoint_url=server.endpoint))

        proxy.traffic.clear()  # railwatch: ranged reads through the counting proxy
        started = time.perf_counter()
        clip_scene(scene_ref(f"s3://source/{key}", "rw"), aoi, grid, store,
                   s3=S3Config(endpoint_url=proxy.endpoint))
        rw_s = time.perf_counter() - started
        rw_bytes, rw_gets = proxy.traffic.received("GET"), proxy.traffic.count("GET")

        with tempfile.TemporaryDirectory() as tmp:  # naive: whole download, then the same clip
            proxy.traffic.clear()
            local = Path(tmp) / "scene.tif"
            started = time.perf_counter()
            S3Config(endpoint_url=proxy.endpoint).client().download_file("source", key, str(local))
            download_s = time.perf_counter() - started
            naive_bytes, naive_gets = proxy.traffic.received("GET"), proxy.traffic.count("GET")
            runs = [timed_clip(scene_ref(str(local), f"naive{i}"), aoi, grid, store) for i in range(3)]
            compute_s, compute_cpu = (statistics.median(r[k] for r in runs) for k in (0, 1))
        naive_s = download_s + compute_s

        http = RangeFileServer(args.cache)  # ranges without moto's whole-object copy per GET
        http_href = f"{http.url}/{path.name}"
        http_s = timed_clip(scene_ref(http_href, "http"), aoi, grid, store)[0]
        http_bytes, http_gets = http.traffic.received("GET"), http.traffic.count("GET")
        http_naive_s = download_then_clip(http_href, "http-naive", aoi, grid, {"": store})[1][""]

        stores = {"a local folder": LocalStore(local_clips),
                  "moto S3": store}
        linked = {mbps: over_link(args.cache, path, aoi, grid, stores, mbps, args.rtt_ms, args.repeats)
                  for mbps in args.bandwidth_mbps}
        many = aois_across(setup, setup.width, args.aois)
        rates = {(n, where): throughput(server.endpoint, href, many, n) for n in (1, 2)
                 for where, href in (("s3", f"s3://source/{key}"), ("http", http_href),
                                     ("local", str(path)))}
        ctx = get_context("spawn")
        peaks = {}
        for w in widths:
            centre = square_aoi("yard", LEFT + w * GSD / 2, TOP - setup.height * GSD / 2, setup.aoi_m)
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                peaks[w] = pool.submit(peak_rss_clip, server.endpoint, f"s3://source/w{w}/scene.tif",
                                       centre).result()
    finally:
        if http is not None:
            http.stop()
        proxy.stop()
        server.stop()
        shutil.rmtree(local_clips, ignore_errors=True)

    table = Table(title=f"Clip bench: {setup.aoi_m / 1000:g} km AOI in a {setup.width}×{setup.height} px "
                        f"4-band uint16 COG ({size / 1e6:.0f} MB, {setup.tile} px tiles) on moto S3")
    for col in ("measure", "railwatch", "reference", "ratio", "target", "verdict"):
        table.add_column(col, justify="left" if col in ("measure", "target") else "right")

    def row(measure: str, ours: str, ref: str, ratio: float | None, target: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("MET" if ok else "NOT MET")
        table.add_row(measure, ours, ref, "" if ratio is None else f"{ratio:.1f}×", target, verdict)

    mb = 1e6
    row("bytes fetched vs whole object", f"{rw_bytes / mb:.1f} MB ({rw_gets} GETs)",
        f"{naive_bytes / mb:.1f} MB ({naive_gets} GETs)", naive_bytes / rw_bytes, "≥ 20× fewer",
        naive_bytes / rw_bytes >= 20)
    row("bytes fetched vs intersecting tiles", f"{rw_bytes / mb:.2f} MB",
        f"{floor / mb:.2f} MB ({tiles} tiles)",
        rw_bytes / floor, "≤ 1.5× the floor", rw_bytes <= 1.5 * floor)
    row("wall time, raw loopback to moto", f"{rw_s:.2f} s", f"{naive_s:.2f} s (download {download_s:.2f})",
        naive_s / rw_s, "(not the target: see note)", None)
    row("wall time, raw loopback to a ranged HTTP server", f"{http_s:.2f} s ({http_bytes / mb:.1f} MB, "
        f"{http_gets} GETs)", f"{http_naive_s:.2f} s (urllib download, then clip)", http_naive_s / http_s,
        "(loopback: no bandwidth limit)", None)
    for mbps, link in linked.items():
        for label, ours in link.ours.items():
            theirs = link.naive[label]
            row(f"wall time over a {mbps:g} Mbit/s link, {args.rtt_ms:g} ms per request, clips to {label}",
                f"{ours:.2f} s ({link.gets} GETs)", f"{theirs:.2f} s (download {link.download_s:.2f}, "
                "then clip)", theirs / ours, "≥ 10× faster", theirs / ours >= 10)
    for where, label in (("s3", "from moto S3"), ("http", "from a ranged HTTP server"),
                         ("local", "from a local file")):
        one, two = rates[(1, where)], rates[(2, where)]
        row(f"throughput {label}, 1 Dask worker", f"{one:.2f} AOI-scenes/s", "", None, "", None)
        row(f"throughput {label}, 2 Dask workers", f"{two:.2f} AOI-scenes/s", f"{one:.2f} (1 worker)",
            two / one, "", None)
    for w in widths:
        mb_scene = scenes[w].stat().st_size / mb
        row(f"peak RSS of a clip, scene {w} px wide ({mb_scene:.0f} MB)", f"{peaks[w][1]:.0f} MB",
            f"{peaks[w][0]:.0f} MB before the clip", None, "flat", None)
    flat = peaks[widths[-1]][1] <= 1.25 * peaks[widths[0]][1]
    table.add_row("peak memory flat as the scene grows", "", "", "", "≤ 1.25× narrowest",
                  "MET" if flat else "NOT MET")
    console.print(table)
    console.print(f"compute (decode + warp + encode + store) measured on the local copy (median of 3): "
                  f"{compute_s:.2f} s wall, {compute_cpu:.2f} s CPU (the cost on an idle core); "
                  "moto copies the whole object on every GET, so raw loopback times overstate ranged "
                  "reads; throughput against moto is bounded by that copy as well (moto is one process "
                  "that also takes the clips' PUTs). Load average during the run: "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine skews the "
                  "throughput rows; the byte rows are exact).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
