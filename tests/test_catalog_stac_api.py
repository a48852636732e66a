"""The STAC API source against a real stac-fastapi-pgstac on loopback, loaded with the simulator's
STAC items (tests/conftest.py): paging, the cloud filter on the server, a 429/503 burst, items
lacking assets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from railwatch.adapters.catalogs import StacApiCatalog, open_catalog
from railwatch.adapters.catalogs.sources import stac_api_config
from railwatch.aoi import AOI
from railwatch.errors import CatalogError, ConfigError
from railwatch.simulate.stac import COLLECTION_ID
from tests.stac_api_server import BROKEN, FaultProxy, why_no_server

T0 = dt.datetime(2023, 9, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2023, 10, 11, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(why_no_server() is not None, reason=str(why_no_server()))


def catalog(url: str, **options: Any) -> StacApiCatalog:
    """The STAC API source over the simulated collection, configured as a user would."""
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


@pytest.mark.parametrize("cut", ["short", "json"])
def test_a_page_cut_short_is_a_transient_error_then_the_search_passes(
        aoi: AOI, proxy: FaultProxy, cut: str) -> None:
    cat = catalog(proxy.url, rate=1000)
    proxy.arm(1, cut=cut)
    with pytest.raises(CatalogError, match="valid JSON" if cut == "json" else "IncompleteRead"):
        cat.search(aoi, T0, T1)
    assert len(cat.search(aoi, T0, T1).scenes) == 40  # the next page comes whole
    proxy.arm(0)
