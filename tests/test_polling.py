"""Exactly once: overlapping watches and a backfill against the real STAC API on loopback register
each (AOI, scene) once; a new version of a scene is reprocessed deliberately and recorded."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from railwatch.adapters.catalogs import StacApiCatalog, open_catalog
from railwatch.adapters.counts import CountsStore
from railwatch.aoi import AOI
from railwatch.polling import discover
from railwatch.simulate.stac import COLLECTION_ID
from tests.stac_api_server import why_no_server

pytestmark = pytest.mark.skipif(why_no_server() is not None, reason=str(why_no_server()))
T0, T1 = dt.datetime(2023, 9, 1, tzinfo=dt.UTC), dt.datetime(2023, 10, 11, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def stac(url: str) -> StacApiCatalog:
    made = open_catalog(f"stac+{url}?collections={COLLECTION_ID}&page_size=50", Path())
    assert isinstance(made, StacApiCatalog)
    return made


@contextlib.contextmanager
def republished(api: str, item: dict[str, Any], original: dict[str, Any]) -> Iterator[None]:
    """`item` replaces its original in the session's STAC API until the block ends."""
    def put(doc: dict[str, Any]) -> None:
        answer = requests.put(f"{api}/collections/{COLLECTION_ID}/items/{doc['id']}", json=doc, timeout=30)
        assert answer.status_code == 200, answer.text

    put(item)
    try:
        yield
    finally:
        put(original)


def test_overlapping_watches_and_a_backfill_register_each_scene_once(
        aoi: AOI, stac_api: str, db_url: str) -> None:
    db = CountsStore(db_url)
    first = discover(aoi, [stac(stac_api)], db, T0, T1, overlap=DAY)
    assert len(first.new) == first.found == 40 and first.revised == []
    newest = max(s.published for s in first.scenes if s.published)
    assert db.poll_mark(aoi.id, stac(stac_api).name) == newest

    again = discover(aoi, [stac(stac_api)], db, T0, T1, overlap=DAY)  # the next poll
    assert again.new == [] and again.revised == [] and 0 < again.found < 40  # only the overlap
    backfill = discover(aoi, [stac(stac_api)], db, T0 + 10 * DAY, T1, overlap=None)
    assert backfill.new == [] and backfill.found == 30
    assert db.poll_mark(aoi.id, stac(stac_api).name) == newest  # a backfill leaves the mark alone

    status = db.scene_status(aoi.id)
    assert len(status) == 40 and set(status.values()) == {"discovered"}
    assert len(db.pending_scenes(aoi.id)) == 40
    assert len(db.pending_scenes(aoi.id, T0 + 10 * DAY, T1)) == 30


def test_a_new_version_is_reprocessed_deliberately(
        aoi: AOI, stac_api: str, stac_items: list[dict[str, Any]], db_url: str) -> None:
    db = CountsStore(db_url)
    found = discover(aoi, [stac(stac_api)], db, T0, T1, overlap=DAY)
    for scene in found.scenes:
        db.mark_scene(aoi.id, scene.source, scene.scene_id, "detected")
    assert db.pending_scenes(aoi.id) == []

    # the provider republishes one scene (e.g. preview -> finalized) through the Transactions API
    item = json.loads(json.dumps(stac_items[10]))
    item["properties"]["updated"] = "2024-01-15T00:00:00Z"
    item["properties"]["pl:publishing_stage"] = "finalized"
    with republished(stac_api, item, stac_items[10]):
        watch = discover(aoi, [stac(stac_api)], db, T0, T1, overlap=DAY)
        assert [s.scene_id for s in watch.revised] == [item["id"]] and watch.new == []
        assert [s.scene_id for s in db.pending_scenes(aoi.id)] == [item["id"]]
        assert db.scene_status(aoi.id)[(watch.revised[0].source, item["id"])] == "discovered"
        row = next(r for r in db.scene_rows(aoi.id) if r.scene_id == item["id"])
        assert row.revisions == 1 and row.previous_version != row.version
        assert row.version is not None and row.version.startswith("finalized@2024-01-15")

        rerun = discover(aoi, [stac(stac_api)], db, T0, T1, overlap=DAY)
        assert rerun.revised == [] and rerun.new == []  # recorded once, not again
