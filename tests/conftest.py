"""Shared fixtures: a real STAC API on loopback (session-scoped: started once per test run, and
only by tests that ask for it), loaded with the simulator's STAC items for the demo AOI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railwatch.aoi import AOI, load_aoi
from railwatch.simulate.scene import make_spec
from railwatch.simulate.season import plan_season
from railwatch.simulate.stac import build_collection, build_item
from tests.stac_api_server import BROKEN, FaultProxy, running_stac_api

REPO = Path(__file__).resolve().parents[1]
START, END = dt.date(2023, 9, 1), dt.date(2023, 10, 10)  # 40 simulated scenes


@pytest.fixture(scope="session")
def aoi() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


def simulated_catalog(aoi: AOI, folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The simulator's STAC items for 40 days (metadata only, no pixels) and their collection."""
    items = []
    for plan in plan_season(aoi, START, END):
        spec = make_spec(aoi, plan, 2023, (5000.0, 4500.0), 3.0)
        doc = build_item(spec, 100 * plan.weather.cloud_cover, 100 * (1 - plan.weather.cloud_cover),
                         {k: f"/data/{spec.scene_id}/{k}.tif" for k in ("analytic", "udm2", "truth")})
        items.append(doc)
        (folder / spec.scene_id).mkdir(parents=True)
        (folder / spec.scene_id / f"{spec.scene_id}.json").write_text(json.dumps(doc))
    broken = json.loads(json.dumps(items[4]))
    broken["id"] = BROKEN
    del broken["assets"]["analytic"]
    items.append(broken)
    for doc in items:
        doc["links"] = []
    collection = build_collection(folder)
    collection["links"] = []
    return collection, items


@pytest.fixture(scope="session")
def stac_items(aoi: AOI, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return simulated_catalog(aoi, tmp_path_factory.mktemp("sim"))[1]


@pytest.fixture(scope="session")
def stac_api(aoi: AOI, stac_items: list[dict[str, Any]],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    collection, _ = simulated_catalog(aoi, tmp_path_factory.mktemp("sim-coll"))
    with running_stac_api(collection, stac_items) as url:
        yield url


@pytest.fixture(scope="session")
def proxy(stac_api: str) -> Iterator[FaultProxy]:
    fault = FaultProxy(stac_api)
    yield fault
    fault.close()


