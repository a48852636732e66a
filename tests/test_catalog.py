"""The static STAC catalog adapter: filtering by AOI and time, band mapping, odd items skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
from shapely.geometry import box, mapping

from railwatch.adapters.catalog import SimulatorCatalog, StaticStacCatalog, open_catalog
from railwatch.adapters.catalogs.base import ASSET_MAPS, SearchResult, in_window
from railwatch.aoi import load_aoi
from railwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
YARD = box(130.58, 42.40, 130.62, 42.44)
ELSEWHERE = box(10.0, 50.0, 10.1, 50.1)


def item(item_id: str, when: datetime, footprint: Any = YARD, assets: dict[str, Any] | None = None,
         **props: Any) -> pystac.Item:
    it = pystac.Item(item_id, mapping(footprint), list(footprint.bounds), when,
                     {"eo:cloud_cover": 12.5, **props})
    for key, extra in (assets if assets is not None else {
        "analytic": {"eo:bands": [{"name": n, "common_name": n} for n in ("blue", "green", "red", "nir")]},
        "udm2": {},
    }).items():
        it.add_asset(key, pystac.Asset(f"./{key}.tif", roles=["data"], extra_fields=extra))
    return it


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    coll = pystac.Collection("test", "test scenes", pystac.Extent(
        pystac.SpatialExtent([[130.0, 42.0, 131.0, 43.0]]),
        pystac.TemporalExtent([[datetime(2023, 1, 1, tzinfo=UTC), None]])))
    coll.add_item(item("in-1", datetime(2023, 9, 2, 2, tzinfo=UTC), updated="2023-09-02T07:00:00Z"))
    coll.add_item(item("in-0", datetime(2023, 9, 1, 2, tzinfo=UTC)))
    coll.add_item(item("far", datetime(2023, 9, 2, tzinfo=UTC), footprint=ELSEWHERE))
    coll.add_item(item("late", datetime(2023, 11, 2, tzinfo=UTC)))
    coll.add_item(item("no-image", datetime(2023, 9, 3, tzinfo=UTC), assets={"udm2": {}}))
    coll.add_item(item("bgr-swapped", datetime(2023, 9, 4, tzinfo=UTC), assets={
        "image": {"eo:bands": [{"name": "B4", "common_name": "red"}, {"name": "B3", "common_name": "green"},
                               {"name": "B2", "common_name": "blue"}]},
        "scl": {}}))
    coll.normalize_hrefs(str(tmp_path / "coll"))
    coll.save(pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "coll" / "collection.json"


def test_search_filters_maps_bands_and_skips_odd_items(collection: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    result = StaticStacCatalog(collection, name="stac:test").search(
        aoi, datetime(2023, 9, 1, tzinfo=UTC), datetime(2023, 10, 1, tzinfo=UTC))
    assert [s.scene_id for s in result.scenes] == ["in-0", "in-1", "bgr-swapped"]
    first, second, swapped = result.scenes
    assert first.image_bands == (1, 2, 3, 4) and first.mask_kind == "udm2"
    assert Path(first.image_href).is_absolute() and first.image_href.endswith("in-0/analytic.tif")
    assert second.published == datetime(2023, 9, 2, 7, tzinfo=UTC) and second.cloud_cover == 12.5
    assert swapped.image_bands == (3, 2, 1) and swapped.mask_kind == "scl"
    assert [(i, "none of the image assets" in r) for i, r in result.skipped] == [("no-image", True)]


def test_open_catalog_sources(collection: Path, tmp_path: Path) -> None:
    assert isinstance(open_catalog("simulator", tmp_path), SimulatorCatalog)
    assert open_catalog(str(collection), tmp_path).name == "stac:coll"
    with pytest.raises(ConfigError, match="no such STAC collection file"):
        open_catalog(str(tmp_path / "nope.json"), tmp_path)
    with pytest.raises(ConfigError, match="is not supported"):
        open_catalog("ftp://example/stac", tmp_path)
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")  # nothing simulated yet: empty, not a crash
    assert SimulatorCatalog(tmp_path).search(aoi, datetime(2023, 1, 1, tzinfo=UTC),
                                             datetime(2024, 1, 1, tzinfo=UTC)).scenes == []


def test_items_with_odd_times_are_skipped_naming_the_item_and_the_cause() -> None:
    """A datetime without a time zone used to crash the whole search (naive vs aware), and a
    range-only item was dropped without a word."""
    naive = item("naive", datetime(2023, 9, 5, 2, tzinfo=UTC).replace(tzinfo=None))  # as served
    span = item("span", datetime(2023, 9, 6, 2, tzinfo=UTC), start_datetime="2023-09-06T00:00:00Z",
                end_datetime="2023-09-06T23:59:59Z")
    span.datetime = None
    ok = item("ok", datetime(2023, 9, 7, 2, tzinfo=UTC))
    start, end = datetime(2023, 9, 1, tzinfo=UTC), datetime(2023, 10, 1, tzinfo=UTC)
    assert all(in_window(i, start, end) for i in (naive, span, ok))
    result = SearchResult()
    result.add_items([naive, span, ok], "stac:test", ASSET_MAPS["default"])
    assert [s.scene_id for s in result.scenes] == ["ok"]
    (naive_id, naive_why), (span_id, span_why) = result.skipped
    assert naive_id == "naive" and "item naive: datetime '2023-09-05T02:00:00' has no time zone" in naive_why
    assert span_id == "span" and "no datetime (only the range 2023-09-06T00:00:00Z .. " in span_why


def test_a_collection_read_again_shows_revised_and_new_items(collection: Path) -> None:
    """Parsed items are kept between searches (a backfill searches once per chunk) only while
    their files are unchanged: a revised item and a newly linked one are seen at once."""
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    catalog = StaticStacCatalog(collection, name="stac:test")
    window = (datetime(2023, 9, 1, tzinfo=UTC), datetime(2023, 10, 1, tzinfo=UTC))
    first = catalog.search(aoi, *window)
    assert [s.cloud_cover for s in first.scenes] == [12.5, 12.5, 12.5]
    coll = pystac.Collection.from_file(str(collection))
    revised = coll.get_item("in-1")
    assert revised is not None
    revised.properties["eo:cloud_cover"] = 3.25
    revised.properties["updated"] = "2023-09-05T00:00:00Z"
    coll.add_item(item("new", datetime(2023, 9, 6, tzinfo=UTC)))
    coll.normalize_hrefs(str(collection.parent))
    coll.save(pystac.CatalogType.SELF_CONTAINED)
    again = catalog.search(aoi, *window)
    assert [(s.scene_id, s.cloud_cover) for s in again.scenes] == [
        ("in-0", 12.5), ("in-1", 3.25), ("bgr-swapped", 12.5), ("new", 12.5)]
    assert again.scenes[1].published == datetime(2023, 9, 5, tzinfo=UTC)
