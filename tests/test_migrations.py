"""The counts database's migrations on SQLite and a real PostgreSQL: a new database ends at
head with exactly the models' schema, concurrent openers migrate once, and `railwatch db`
shows and upgrades the revision."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, create_engine, inspect

import railwatch.adapters.alerts  # noqa: F401  (its tables join the metadata)
from railwatch import migrations
from railwatch.adapters.counts import Base, CountsStore
from railwatch.cli import main
from railwatch.errors import ConfigError
from railwatch.settings import get_settings
from tests.pg import PgServer

TABLES = {"scenes", "poll_marks", "scene_counts", "track_counts", "alerts", "alert_transitions",
          "webhook_outbox", "webhook_deliveries", migrations.VERSION_TABLE}


def schema_diff(engine: Engine) -> list[Any]:
    """What autogenerate would write next to match the models: nothing, when all is well."""
    with engine.connect() as con:
        context = MigrationContext.configure(con, opts={"version_table": migrations.VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def test_a_new_database_is_at_head_with_the_models_schema(db_url: str) -> None:
    db = CountsStore(db_url)
    assert migrations.current(db.engine) == migrations.head()
    assert set(inspect(db.engine).get_table_names()) == TABLES
    assert schema_diff(db.engine) == []
    CountsStore(db_url)  # opening again at head changes nothing


def test_a_database_at_an_older_revision_is_migrated_with_its_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    migrations.upgrade(engine, "0001")  # before per-track surge columns
    assert "surge" not in {c["name"] for c in inspect(engine).get_columns("track_counts")}
    with engine.begin() as con:
        old = Table("track_counts", MetaData(), autoload_with=con)
        con.execute(old.insert().values(
            aoi_id="yard", source="simulator", scene_id="s1", track_id="t1", detector_version="0.1.0",
            acquired=datetime(2023, 9, 1, tzinfo=UTC), length_m=900.0, occupied_m=145.0, cars=10,
            cars_low=8, cars_high=12, valid_fraction=1.0))
    db = CountsStore(db_url)
    assert migrations.current(db.engine) == migrations.head() != "0001"
    [row] = db.track_counts("yard")
    assert (row.cars, row.surge, row.baseline_cars) == (10, None, None)
    db.set_track_surge_flags("yard", "0.1.0", {("s1", "t1"): (True, 2.0, 5.0)})
    assert db.track_counts("yard", "s1")[0].surge is True


def test_a_database_from_a_newer_railwatch_is_a_config_error(db_url: str) -> None:
    db = CountsStore(db_url)
    with db.engine.begin() as con:
        con.exec_driver_sql(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(ConfigError, match=r"9999.*knows revisions up to"):
        CountsStore(db_url)


def test_concurrent_opens_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.url(pg_server.new_database())
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            CountsStore(url, create_engine(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrations.current(create_engine(url)) == migrations.head()


def test_db_commands_show_and_upgrade_the_revision(
        db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAILWATCH_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 0
        shown = capsys.readouterr().out
        assert "revision -" in shown and "not migrated yet" in shown
        assert main(["db", "upgrade"]) == 0
        assert f"at revision {migrations.head()} (head)" in capsys.readouterr().out
        assert main(["db", "current"]) == 0
        assert "(up to date)" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
