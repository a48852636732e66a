"""How many HTTP requests and how long does a 1-year search over 20 AOIs take against a real STAC
API? (issue: catalog adapters, closing figures)

Starts the test suite's STAC API on loopback (PostgreSQL + PostGIS + pgstac + stac-fastapi-pgstac,
tests/stac_api_server.py; needs the Debian packages .ci/run installs), loads one simulated
PlanetScope-like item per AOI and day (metadata only) for `--aois` copies of the Tumangang AOI
spread 0.1° apart, then runs railwatch's STAC API source (`StacApiCatalog.search`: intersects,
datetime, all pages) over each AOI for the whole year, through a counting proxy, for a few page
sizes. Prints a table: requests, items, wall time.

Run: python bench/search_bench.py [--aois 20] [--days 365] [--page-size 100 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from railwatch.adapters.catalogs import StacApiCatalog, open_catalog  # noqa: E402
from railwatch.aoi import AOI, load_aoi  # noqa: E402
from railwatch.simulate.scene import make_spec  # noqa: E402
from railwatch.simulate.season import plan_season  # noqa: E402
from railwatch.simulate.stac import COLLECTION_ID, build_collection, build_item  # noqa: E402
from tests.pg import running_postgres  # noqa: E402
from tests.stac_api_server import FaultProxy, running_stac_api, why_no_server  # noqa: E402

START = dt.date(2023, 1, 1)


def shifted_aois(count: int, folder: Path) -> list[AOI]:
    """`count` copies of the Tumangang AOI file, each moved 0.1° (≈8 km) further east/north."""
    doc = json.loads((ROOT / "aois" / "tumangang.geojson").read_text(encoding="utf-8"))
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        dx, dy = 0.1 * (i % 5), 0.1 * (i // 5)

        def move(coords: Any, dx: float = dx, dy: float = dy) -> Any:
            if isinstance(coords[0], (int, float)):
                return [coords[0] + dx, coords[1] + dy, *coords[2:]]
            return [move(c) for c in coords]

        copy = json.loads(json.dumps(doc))
        for feature in copy["features"]:
            feature["geometry"]["coordinates"] = move(feature["geometry"]["coordinates"])
            if feature["properties"].get("id") == "tumangang":
                feature["properties"]["id"] = f"yard{i:02d}"
        path = folder / f"yard{i:02d}.geojson"
        path.write_text(json.dumps(copy), encoding="utf-8")
        out.append(load_aoi(path))
    return out


def items_for(aois: list[AOI], days: int, folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One item per AOI and day (its footprint over the AOI) and the collection over them."""
    items = []
    for aoi in aois:
        for plan in plan_season(aoi, START, START + dt.timedelta(days=days - 1)):
            spec = make_spec(aoi, plan, 2023, (5000.0, 4500.0), 3.0)
            doc = build_item(spec, 100 * plan.weather.cloud_cover, 100 * (1 - plan.weather.cloud_cover),
                             {k: f"/data/{spec.scene_id}/{k}.tif" for k in ("analytic", "udm2", "truth")})
            doc["links"] = []
            items.append(doc)
    (folder / "x" / "x.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "x" / "x.json").write_text(json.dumps(items[0]), encoding="utf-8")
    collection = build_collection(folder)
    collection["extent"]["temporal"]["interval"] = [[f"{START}T00:00:00Z", None]]
    boxes = [d["bbox"] for d in items]
    collection["extent"]["spatial"]["bbox"] = [[min(b[0] for b in boxes), min(b[1] for b in boxes),
                                               max(b[2] for b in boxes), max(b[3] for b in boxes)]]
    collection["links"] = []
    return collection, items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aois", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--page-size", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args(argv)
    console = Console(width=120)
    reason = why_no_server()
    if reason:
        console.print(f"cannot start the STAC API here: {reason}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        aois = shifted_aois(args.aois, folder / "aois")
        started = time.perf_counter()
        collection, items = items_for(aois, args.days, folder / "items")
        console.log(f"{len(items)} items built in {time.perf_counter() - started:.1f}s; loading pgstac")
        with running_postgres(postgis=True) as pg, running_stac_api(pg, collection, items) as url:
            proxy = FaultProxy(url)
            table = Table(title=f"1 search per AOI over {args.days} days: {args.aois} AOIs, "
                                f"{len(items)} items in the API (stac-fastapi-pgstac on loopback)")
            for col in ("page size", "requests", "items found", "wall s", "s per AOI", "items/s"):
                table.add_column(col, justify="right")
            end = dt.datetime.combine(START + dt.timedelta(days=args.days), dt.time(), tzinfo=dt.UTC)
            begin = dt.datetime.combine(START, dt.time(), tzinfo=dt.UTC)
            for page in args.page_size:
                proxy.arm(0)
                found = 0
                started = time.perf_counter()
                # one source per run, as the flows open it: the landing page is read once
                cat = open_catalog(f"stac+{proxy.url}?collections={COLLECTION_ID}"
                                   f"&page_size={page}&rate=1000", folder)
                assert isinstance(cat, StacApiCatalog)
                for aoi in aois:
                    found += len(cat.search(aoi, begin, end).scenes)
                wall = time.perf_counter() - started
                table.add_row(str(page), str(len(proxy.paths)), str(found), f"{wall:.2f}",
                              f"{wall / len(aois):.3f}", f"{found / wall:.0f}")
            proxy.close()
    console.print(table)
    console.print("requests: every HTTP request the source sent (landing page, conformance, search "
                  "pages), counted at a proxy in front of the API; rate limit lifted (rate=1000/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
