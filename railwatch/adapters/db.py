"""The database railwatch keeps its registry, counts and alerts in (SQLite or PostgreSQL).

Opening it upgrades its schema to the newest migration (railwatch/migrations), so every
process — CLI, flow, worker — sees the tables its code expects, and a database written by an
older railwatch is adopted in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import create_engine, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from railwatch import migrations
from railwatch.errors import ConfigError, StorageError

UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything railwatch stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def redacted(url: str) -> str:
    """The URL without its password, fit for a terminal, a log or an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


URL_FORMS = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"


def open_engine(url: str) -> Engine:
    """An engine for `url`, or a one-line ConfigError naming what is wrong with it."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise ConfigError(f"RAILWATCH_DATABASE_URL: the database URL {redacted(url)!r} is not "
                          f"usable ({exc}); {URL_FORMS}") from exc
    if engine.dialect.name not in UPSERTS:
        raise ConfigError(f"RAILWATCH_DATABASE_URL: the database URL {redacted(url)!r} uses "
                          f"{engine.dialect.name!r}, which is not supported; {URL_FORMS}")
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)  # a fresh RAILWATCH_HOME
        except OSError as exc:
            raise ConfigError(f"cannot open the counts database {redacted(url)!r}: its folder cannot "
                              f"be created ({exc.strerror}); fix RAILWATCH_DATABASE_URL") from exc
    return engine


def database_error(url: str, exc: SQLAlchemyError) -> ConfigError:
    """A failure to reach or migrate the database, as one line (no SQL, no traceback)."""
    return ConfigError(f"cannot open the counts database {redacted(url)!r}: {exc.__class__.__name__}: "
                       f"{str(exc).splitlines()[0]}")


class Database:
    """An engine whose schema is at the newest migration, and the session/upsert helpers."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or open_engine(url)
        try:
            migrations.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise database_error(url, exc) from exc
        except CommandError as exc:  # e.g. written by a newer railwatch than this one
            raise ConfigError(f"cannot migrate the counts database {redacted(url)!r}: {exc} "
                              f"(this railwatch knows revisions up to {migrations.head()})") from exc

    def _upsert(self, session: Session, table: Any, rows: Sequence[dict[str, Any]],
                keys: Sequence[str]) -> None:
        """Insert `rows`, or update every other column where the unique `keys` exist already."""
        if not rows:
            return
        stmt: Any = UPSERTS[self.engine.dialect.name](table)
        update = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update), rows)

    def _insert_new(self, table: Any, keys: Sequence[str]) -> Any:
        """An INSERT that skips rows whose unique `keys` exist (concurrent runs: the key decides)."""
        stmt: Any = UPSERTS[self.engine.dialect.name](table)
        return stmt.on_conflict_do_nothing(index_elements=list(keys))

    def _session(self) -> _SessionScope:
        return _SessionScope(self.engine)


class _SessionScope:
    """A session that commits on success, rolls back on error and turns DB errors into ours."""

    def __init__(self, engine: Engine) -> None:
        self.session = Session(engine, expire_on_commit=False)

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        except SQLAlchemyError as err:
            raise StorageError(f"counts database write failed: {err}") from err
        finally:
            self.session.close()
