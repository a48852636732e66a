"""The local object store and the counts store (SQLite): atomic, idempotent, no duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from railwatch.adapters.counts import CountsStore
from railwatch.adapters.store import LocalStore, open_store
from railwatch.errors import ConfigError, StorageError
from railwatch.models import ClipRef, SceneCount, SceneRef, TrackCount


def test_local_store_roundtrip_skip_identical_and_no_partials(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    info = store.put_bytes("a/b/image.tif", b"abc")
    assert store.get_bytes("a/b/image.tif") == b"abc" and info.size == 3
    path = tmp_path / "store" / "a" / "b" / "image.tif"
    mtime = path.stat().st_mtime_ns
    store.put_bytes("a/b/image.tif", b"abc")  # identical: not rewritten
    assert path.stat().st_mtime_ns == mtime
    store.put_bytes("a/b/image.tif", b"abcd")
    assert store.get_bytes("a/b/image.tif") == b"abcd"
    assert list(store.list("a")) == ["a/b/image.tif"]
    assert not list((tmp_path / "store").rglob("*.part"))
    with pytest.raises(StorageError, match="escapes the store root"):
        store.put_bytes("../outside", b"x")


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    with pytest.raises(ConfigError, match="unsupported scheme"):
        open_store("ftp://host/x")
    with pytest.raises(ConfigError, match="names no bucket"):
        open_store("s3:///prefix")


def scene(i: int) -> SceneRef:
    return SceneRef(source="simulator", scene_id=f"s{i}", acquired=datetime(2023, 9, i, tzinfo=UTC),
                    image_href=f"/x/{i}.tif", image_bands=(1, 2, 3, 4))


def count(i: int, cars: int) -> SceneCount:
    track = TrackCount(track_id="t1", length_m=900, occupied_m=cars * 14.5, cars=cars,
                       cars_low=cars - 2, cars_high=cars + 2, valid_fraction=1.0)
    return SceneCount(aoi_id="yard", source="simulator", scene_id=f"s{i}",
                      acquired=datetime(2023, 9, i, tzinfo=UTC), detector_version="0.1.0",
                      tracks=(track,), occupied_m=track.occupied_m, cars=cars, cars_low=cars - 2,
                      cars_high=cars + 2, valid_fraction=1.0, shift_m=(0.5, -1.0), flags=(),
                      image_key=f"k{i}", mask_key=f"m{i}")


def test_counts_store_upserts_and_registry(tmp_path: Path) -> None:
    db = CountsStore(f"sqlite:///{tmp_path / 'counts.db'}")
    db.register_scenes("yard", [scene(1), scene(2)])
    db.register_scenes("yard", [scene(1), scene(2), scene(3)])  # rediscovery adds only s3
    assert len(db.scene_status("yard")) == 3
    clip = ClipRef(aoi_id="yard", scene=scene(1), image_key="k1", mask_key="m1", valid_fraction=0.9)
    db.mark_scene("yard", "simulator", "s1", "measured", clip=clip)
    db.mark_scene("yard", "simulator", "s2", "failed", error="corrupt GeoTIFF")
    db.mark_scene("yard", "simulator", "s2", "failed", error="corrupt GeoTIFF")
    assert db.scene_status("yard")[("simulator", "s2")] == "failed"
    [measured] = db.measured_clips("yard")
    assert measured.scene.acquired == scene(1).acquired and measured.valid_fraction == 0.9
    assert db.last_acquired("yard") == datetime(2023, 9, 3, tzinfo=UTC)

    db.upsert_counts([count(1, 10), count(2, 12)])
    db.upsert_counts([count(1, 11), count(2, 12)])  # a rerun replaces, never duplicates
    rows = db.scene_counts("yard")
    assert [(r.scene_id, r.cars) for r in rows] == [("s1", 11), ("s2", 12)]
    assert [t.cars for t in db.track_counts("yard", "s1")] == [11]
    db.set_surge_flags("yard", "0.1.0", {"s2": (True, 3.6, 11.0)})
    assert [r.surge for r in db.scene_counts("yard")] == [False, True]
    # a second detector version adds rows instead of overwriting
    db.upsert_counts([count(1, 9).model_copy(update={"detector_version": "0.2.0"})])
    assert len(db.scene_counts("yard")) == 3 and len(db.scene_counts("yard", "0.1.0")) == 2


def test_bad_database_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        CountsStore("notadialect://x")
    with pytest.raises(ConfigError, match="cannot open the counts database"):
        CountsStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")


def test_a_database_from_before_new_columns_keeps_working(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'counts.db'}"
    db = CountsStore(url)
    with db.engine.begin() as con:  # as an older railwatch left it
        con.exec_driver_sql("ALTER TABLE scene_counts DROP COLUMN background_id")
    db = CountsStore(url)
    db.upsert_counts([count(1, 10).model_copy(update={"background_id": "reference"})])
    assert db.scene_counts("yard")[0].background_id == "reference"
