"""The local object store and the counts store (on SQLite and on a real PostgreSQL server):
atomic, idempotent, no duplicates; a database from an older railwatch is adopted in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine

from railwatch import migrations
from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import Base, CountsStore, SceneCountRow, TrackCountRow
from railwatch.adapters.registry import PollMarkRow, SceneRow
from railwatch.adapters.store import LocalStore, open_store
from railwatch.errors import ConfigError, StorageError
from railwatch.models import ClipRef, SceneCount, SceneRef, TrackCount
from tests.servers import free_port
from tests.test_migrations import schema_diff


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


def test_counts_store_upserts_and_registry(db_url: str) -> None:
    db = CountsStore(db_url)
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


def test_many_scenes_are_marked_in_one_go(db_url: str) -> None:
    """`mark_scenes` advances exactly the scenes named (clips with their keys and coverage), and
    a detection clears the error a failed attempt left."""
    db = CountsStore(db_url)
    db.register_scenes("yard", [scene(1), scene(2), scene(3)])
    db.register_scenes("depot", [scene(1)])  # the same scene over another AOI is left alone
    db.mark_scene("yard", "simulator", "s2", "failed", error="timeout")
    clips = [ClipRef(aoi_id="yard", scene=scene(i), image_key=f"k{i}", mask_key=f"m{i}",
                     valid_fraction=i / 10) for i in (1, 2)]
    db.mark_scenes("clipped", clips=clips)
    assert [(c.scene.scene_id, c.image_key, c.mask_key, c.valid_fraction)
            for c in db.clipped_scenes("yard")] == [("s1", "k1", "m1", 0.1), ("s2", "k2", "m2", 0.2)]
    assert db.scene_status("depot") == {("simulator", "s1"): "discovered"}
    db.mark_scenes("detected", scenes=[("yard", "simulator", "s2"), ("yard", "simulator", "s3")])
    assert db.scene_status("yard") == {("simulator", "s1"): "clipped", ("simulator", "s2"): "detected",
                                       ("simulator", "s3"): "detected"}
    rows = {r.scene_id: r for r in db.scene_rows("yard")}
    assert rows["s2"].last_error is None and rows["s2"].attempts == 1 and rows["s2"].image_key == "k2"
    db.mark_scenes("measured")  # nothing named: nothing changes
    assert db.scene_status("yard")[("simulator", "s1")] == "clipped"


def test_scene_versions_revisions_and_poll_marks(db_url: str) -> None:
    db = CountsStore(db_url)
    t0 = datetime(2023, 9, 2, tzinfo=UTC)
    first = scene(1).model_copy(update={"version": "preview@1", "published": t0})
    assert [s.scene_id for s in db.register_scenes("yard", [first, first]).new] == ["s1"]
    db.mark_scene("yard", "simulator", "s1", "detected")
    older = first.model_copy(update={"version": "preview@0", "published": t0 - timedelta(days=1)})
    assert db.register_scenes("yard", [older]).known == 1  # an older copy changes nothing
    final = first.model_copy(update={"version": "finalized@2", "published": t0 + timedelta(days=3)})
    assert db.register_scenes("yard", [final]).revised == [final]
    assert db.register_scenes("yard", [final]).known == 1  # recorded once
    [row] = db.scene_rows("yard")
    assert (row.status, row.version, row.previous_version, row.revisions) == (
        "discovered", "finalized@2", "preview@1", 1)
    assert db.pending_scenes("yard") == [final]

    assert db.poll_mark("yard", "simulator") is None
    db.advance_mark("yard", "simulator", t0)
    db.advance_mark("yard", "simulator", t0 - timedelta(hours=1))  # never backwards
    assert db.poll_mark("yard", "simulator") == t0


def test_bad_database_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        CountsStore("notadialect://x")
    CountsStore(f"sqlite:///{tmp_path / 'new-home' / 'x.db'}")  # a fresh folder is made
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="cannot open the counts database"):
        CountsStore(f"sqlite:///{tmp_path / 'a-file' / 'x.db'}")
    with pytest.raises(ConfigError, match="cannot open the counts database") as caught:
        CountsStore(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/railwatch")
    assert "\n" not in str(caught.value)


OLD_COLUMNS = {"scenes": ["version", "previous_version", "revisions"],
               "track_counts": ["segments", "surge", "surge_ratio", "baseline_cars"],
               "scene_counts": ["background_id"]}


def test_a_database_from_before_new_columns_keeps_working(db_url: str) -> None:
    """A database an older railwatch wrote (no migrations, fewer columns, no alert tables) is
    brought to head on open, its rows kept."""
    engine = create_engine(db_url)
    Base.metadata.create_all(engine, tables=[SceneRow.__table__, PollMarkRow.__table__,  # type: ignore[list-item]
                                             TrackCountRow.__table__, SceneCountRow.__table__])
    with engine.begin() as con:  # as an older railwatch left it
        for table, columns in OLD_COLUMNS.items():
            for column in columns:
                con.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        old = Table("scene_counts", MetaData(), autoload_with=con)
        con.execute(old.insert().values(
            aoi_id="yard", source="simulator", scene_id="s1", detector_version="0.1.0",
            acquired=datetime(2023, 9, 1, tzinfo=UTC), occupied_m=145.0, cars=10, cars_low=8,
            cars_high=12, valid_fraction=1.0, shift_dx_m=0.0, shift_dy_m=0.0, flags="", image_key="k1",
            mask_key="m1", surge=False))
    assert migrations.current(engine) is None

    db = CountsStore(db_url)
    assert migrations.current(db.engine) == migrations.head() and schema_diff(db.engine) == []
    db.upsert_counts([count(2, 12).model_copy(update={"background_id": "reference"})])
    assert [(r.cars, r.background_id) for r in db.scene_counts("yard")] == [(10, None), (12, "reference")]
    assert db.track_counts("yard", "s2")[0].cars == 12
    db.register_scenes("yard", [scene(1).model_copy(update={"version": "v1"})])
    assert db.scene_rows("yard")[0].version == "v1"
    assert AlertStore(db).alerts("yard", "0.1.0") == []


def test_a_table_railwatch_did_not_write_is_refused(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE poll_marks (id INTEGER PRIMARY KEY, aoi_id VARCHAR(64))")
    with pytest.raises(ConfigError, match="poll_marks lacks the required column source"):
        CountsStore(db_url, engine)
