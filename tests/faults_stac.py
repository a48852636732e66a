"""Faults of a STAC API catalog: each world reads a real STAC API (pgstac + stac-fastapi-pgstac on
loopback, one PostgreSQL and one API for the whole lab) through a fault-injecting proxy. A world
has its own collection, loaded with the simulated items whose asset hrefs are the world's own
files (file:// URIs, which GDAL reads directly). The API misbehaves (throttling, outages, pages
cut short) or serves a damaged item; the backfill runs, the fault clears (the good item is
upserted back into pgstac), and the backfill runs again: it must reach a clean STAC world's counts.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fault_lab import Case, Lab
from tests.faultkit import AOI_ID, Baseline, FaultRow, World, judge
from tests.pg import PgServer, running_postgres
from tests.stac_api_server import FaultProxy, running_stac_api, why_no_server

LAYER = "STAC API"
SOURCE = "stac-lab"  # every STAC world's rows name this source (the proxy's port is not stable)
TARGET = 2  # the day the first train arrives, as in tests/faults_data.py
Item = dict[str, Any]


@dataclass(frozen=True)
class StacLab:
    """The lab's PostgreSQL server, the STAC API on it, and the proxy in front of it."""

    pg: PgServer
    api: str
    proxy: FaultProxy

    def load(self, collection: Item | None, items: list[Item]) -> None:
        """Upsert a collection and/or items into pgstac, as a catalog's maintainer would."""
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods

        db = PgstacDB(dsn=self.pg.dsn())
        try:
            loader = Loader(db)
            if collection is not None:
                loader.load_collections(iter([collection]), Methods.upsert)
            if items:
                loader.load_items(iter(items), Methods.upsert)
        finally:
            db.close()


def collection_of(folder: Path, collection_id: str) -> Item:
    """The simulator's collection document under another id, without links."""
    doc: Item = json.loads((folder / AOI_ID / "collection.json").read_text())
    return doc | {"id": collection_id, "links": []}


def stac_lab(lab: Lab) -> StacLab:
    """PostgreSQL + PostGIS, pgstac, the API and a proxy: started on first use, once per lab."""
    def start() -> tuple[StacLab, Callable[[], None]]:
        if why_no_server() is not None:
            raise RuntimeError(f"the STAC API faults need a STAC API here: {why_no_server()}")
        stack = ExitStack()
        try:
            pg = stack.enter_context(running_postgres(postgis=True))
            api = stack.enter_context(running_stac_api(pg, collection_of(lab.simulated, "lab"), []))
            proxy = FaultProxy(api)
            stack.callback(proxy.close)
        except BaseException:
            stack.close()
            raise
        return StacLab(pg, api, proxy), stack.close

    served: StacLab = lab.server("stac", start)
    return served


def items_of(world: World, collection_id: str) -> list[Item]:
    """The world's simulated items, in acquisition order, for `collection_id`: no links, asset
    hrefs file:// URIs of the world's files (a bare absolute path in an API's item is relative
    to the API's host, as URLs go)."""
    items = []
    for folder in sorted(p for p in world.scenes_dir.iterdir() if p.is_dir()):
        item: Item = json.loads((folder / f"{folder.name}.json").read_text())
        item |= {"collection": collection_id, "links": []}
        for asset in item["assets"].values():
            asset["href"] = (folder / asset["href"].removeprefix("./")).as_uri()
        items.append(item)
    return items


def stac_world(lab: Lab, name: str) -> tuple[World, StacLab, list[Item]]:
    """A world whose only catalog is its own collection of the lab's STAC API (via the proxy),
    loaded with its items; the world, the API and the items."""
    stac = stac_lab(lab)
    collection_id = f"rw-{uuid.uuid4().hex[:10]}"
    source = f"stac+{stac.proxy.url}?collections={collection_id}&name={SOURCE}&backoff=0.1"
    world = lab.world(name, RAILWATCH_CATALOGS=json.dumps([source]))
    items = items_of(world, collection_id)
    stac.load(collection_of(world.home / "simulator", collection_id), items)
    return world, stac, items


def baseline(lab: Lab) -> Baseline:
    """A clean run of a STAC world: every STAC world's rows name the same source."""
    return lab.baseline_of("stac", lambda: stac_world(lab, "clean stac")[0])


def proxy_fault(burst: int, status: int = 429, retry_after: str = "1", cut: str = ""
                ) -> Callable[[Lab, str, str], FaultRow]:
    """The case of the proxy failing the next `burst` requests (or cutting `burst` search pages)
    during the first run."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        clean = baseline(lab)
        world, stac, _ = stac_world(lab, fault)
        stac.proxy.arm(burst, status, retry_after, cut)
        during = world.backfill()
        faulted = [s for _, s in stac.proxy.log[: burst]]
        gaps = [b[0] - a[0] for a, b in zip(stac.proxy.log, stac.proxy.log[1:], strict=False)][:burst]
        stac.proxy.arm(0)
        assert cut or status != 429 or all(g >= 0.95 * float(retry_after) for g in gaps), (
            f"did not wait Retry-After {retry_after} s: gaps {gaps}, statuses {faulted}")
        after = world.backfill()
        return judge(layer, fault, clean, world, during, after)
    return run


def damaged_item(damage: Callable[[Item], None]) -> Callable[[Lab, str, str], FaultRow]:
    """The case of the API serving the target scene's item damaged during the first run; then
    the good item is upserted back into pgstac."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        clean = baseline(lab)
        world, stac, items = stac_world(lab, fault)
        good = items[TARGET]
        bad = copy.deepcopy(good)
        damage(bad)
        stac.load(None, [bad])
        during = world.backfill()
        stac.load(None, [good])
        after = world.backfill()
        return judge(layer, fault, clean, world, during, after)
    return run


def no_assets(item: Item) -> None:
    item["assets"] = {}


def no_proj(item: Item) -> None:
    for key in [k for k in item["properties"] if k.startswith("proj:")]:
        del item["properties"][key]
    item["stac_extensions"] = [e for e in item["stac_extensions"] if "/projection/" not in e]


def bow_tie(item: Item) -> None:
    """The footprint's corners in the wrong order: a self-intersecting ring (still over the AOI)."""
    ring = item["geometry"]["coordinates"][0]
    item["geometry"]["coordinates"] = [[ring[i] for i in (0, 2, 1, 3, 0)]]


def unclosed_ring(item: Item) -> None:
    """pgstac loads it, but PostGIS cannot read it back: every search over it fails (HTTP 500)."""
    item["geometry"]["coordinates"][0].pop()


def naive_datetime(item: Item) -> None:
    item["properties"]["datetime"] = item["properties"]["datetime"].split(".")[0].removesuffix("Z")


def range_only(item: Item) -> None:
    """datetime null, the acquisition given only as a range (valid STAC; pgstac serves it)."""
    day = item["properties"]["datetime"][:10]
    item["properties"] |= {"datetime": None, "start_datetime": f"{day}T00:00:00Z",
                           "end_datetime": f"{day}T23:59:59Z"}


CASES = [
    Case(LAYER, "429 burst (3) with Retry-After: 1", proxy_fault(3, 429, "1")),
    Case(LAYER, "503 burst (8, more than the HTTP retries)", proxy_fault(8, 503, "0")),
    Case(LAYER, "search page cut short (Content-Length mismatch, 2×)", proxy_fault(2, cut="short")),
    Case(LAYER, "search page cut to invalid JSON (2×)", proxy_fault(2, cut="json")),
    Case(LAYER, "item without assets", damaged_item(no_assets)),
    Case(LAYER, "item without proj:* properties", damaged_item(no_proj)),
    Case(LAYER, "item with a self-intersecting footprint", damaged_item(bow_tie)),
    Case(LAYER, "item with an unclosed footprint ring", damaged_item(unclosed_ring)),
    Case(LAYER, "item datetime without a time zone", damaged_item(naive_datetime)),
    Case(LAYER, "item with datetime null (start/end range only)", damaged_item(range_only)),
]
