"""Alembic migrations of railwatch's tables, shipped inside the package (no alembic.ini needed).

`upgrade(engine)` runs on every open of the store; the version table has its own name so a
database shared with Prefect (which migrates with Alembic too) keeps both histories apart.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

VERSION_TABLE = "railwatch_alembic_version"
PG_LOCK_ID = 0x7261696C  # "rail": one upgrade at a time when several processes open at once


def config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at this folder (works from a wheel as from a checkout)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this railwatch knows."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None, "railwatch/migrations/versions holds no migration"
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision; None before the first upgrade (new, or from before migrations)."""
    with engine.connect() as con:
        return MigrationContext.configure(con, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` in one transaction (PostgreSQL: under an advisory lock,
    so concurrent openers wait and then find nothing to do)."""
    with engine.begin() as con:
        if con.dialect.name == "postgresql":
            con.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
        command.upgrade(config(con), revision)
