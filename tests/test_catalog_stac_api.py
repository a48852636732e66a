"""The STAC API source against a real stac-fastapi-pgstac on loopback, loaded with the simulator's
STAC items: paging, the cloud filter on the server, a 429/503 burst, items lacking assets."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from railwatch.adapters.catalogs import StacApiCatalog, open_catalog
from railwatch.adapters.catalogs.sources import stac_api_config
from railwatch.aoi import AOI, load_aoi
from railwatch.errors import CatalogError, ConfigError
from railwatch.simulate.scene import make_spec
from railwatch.simulate.season import plan_season
from railwatch.simulate.stac import COLLECTION_ID, build_collection, build_item
from tests.stac_api_server import FaultProxy, running_stac_api, why_no_server

REPO = Path(__file__).resolve().parents[1]
START, END = dt.date(2023, 9, 1), dt.date(2023, 10, 10)  # 40 simulated scenes
T0 = dt.datetime(2023, 9, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2023, 10, 11, tzinfo=dt.UTC)
BROKEN = "20230905_broken_no_analytic"

pytestmark = pytest.mark.skipif(why_no_server() is not None, reason=str(why_no_server()))


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


def catalog(url: str, **options: Any) -> StacApiCatalog:
    query = "&".join(f"{k}={v}" for k, v in {"collections": COLLECTION_ID, **options}.items())
    made = open_catalog(f"stac+{url}?{query}", Path())
    assert isinstance(made, StacApiCatalog)
    return made


def test_pages_through_every_item_and_skips_items_without_assets(
        aoi: AOI, proxy: FaultProxy, stac_items: list[dict[str, Any]]) -> None:
    proxy.arm(0)
    result = catalog(proxy.url, page_size=7, rate=1000).search(aoi, T0, T1)
    assert len(result.scenes) == 40 == len({s.scene_id for s in result.scenes})
    assert [s.acquired for s in result.scenes] == sorted(s.acquired for s in result.scenes)
    assert [(i, "none of the image assets" in r) for i, r in result.skipped] == [(BROKEN, True)]
    assert proxy.paths.count("POST /search") == 6, proxy.paths  # 41 items, pages of 7
    first = result.scenes[0]
    assert first.source == f"stac:{proxy.url.removeprefix('http://')}/{COLLECTION_ID}"
    assert first.image_href.endswith("/analytic.tif") and first.mask_kind == "udm2"
    assert first.version is not None and first.version.startswith("finalized@")
    assert first.published is not None and first.published > first.acquired


def test_time_range_is_half_open_and_cloud_filter_runs_on_the_server(
        aoi: AOI, stac_api: str, stac_items: list[dict[str, Any]]) -> None:
    september = catalog(stac_api).search(aoi, T0, dt.datetime(2023, 10, 1, tzinfo=dt.UTC))
    assert len(september.scenes) == 30
    cat = catalog(stac_api, max_cloud=30)
    params = cat.search_parameters(aoi, T0, T1)
    assert params["filter"]["args"][1] == 30.0 and "query" not in params  # pgstac conforms to CQL2
    clear = cat.search(aoi, T0, T1)
    expected = {d["id"] for d in stac_items if d["properties"]["eo:cloud_cover"] <= 30 and d["id"] != BROKEN}
    assert {s.scene_id for s in clear.scenes} == expected and 0 < len(expected) < 40


def test_throttling_burst_is_retried_after_the_time_the_server_asked(aoi: AOI, proxy: FaultProxy) -> None:
    cat = catalog(proxy.url, page_size=20, rate=1000, backoff=0.01)
    cat.client()  # the landing page is read before the burst
    proxy.arm(2, status=429, retry_after="1")
    result = cat.search(aoi, T0, T1)
    assert len(result.scenes) == 40
    statuses = [s for _, s in proxy.log]
    assert statuses[:3] == [429, 429, 200] and set(statuses[3:]) == {200}
    gaps = [b[0] - a[0] for a, b in zip(proxy.log, proxy.log[1:], strict=False)][:2]
    assert all(g >= 0.95 for g in gaps), gaps  # waited at least Retry-After: 1 s each time


def test_persistent_unavailability_is_a_transient_error_naming_the_status(
        aoi: AOI, proxy: FaultProxy) -> None:
    cat = catalog(proxy.url, retries=1, backoff=0.01)
    cat.client()
    proxy.arm(5, status=503, retry_after="0")
    with pytest.raises(CatalogError, match="HTTP 503"):
        cat.search(aoi, T0, T1)
    proxy.arm(0)


def test_bad_source_strings_name_what_to_fix(stac_api: str) -> None:
    with pytest.raises(ConfigError, match="name the collections"):
        open_catalog(f"stac+{stac_api}", Path())
    with pytest.raises(ConfigError, match=r"unknown option.*cloud"):
        stac_api_config(f"stac+{stac_api}?collections=x&cloud=3")
    with pytest.raises(ConfigError, match="page_size='many' is not a int"):
        stac_api_config(f"stac+{stac_api}?collections=x&page_size=many")
    with pytest.raises(ConfigError, match="asset map 'nope' is unknown"):
        stac_api_config(f"stac+{stac_api}?collections=x&assets=nope")
    assert stac_api_config("stac+https://e84.example/v1?collections=sentinel-2-l2a").assets.bands == (
        "blue", "green", "red", "nir")
