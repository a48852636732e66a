"""Alembic's entry point: run the migrations on the connection railwatch hands over, or on
`sqlalchemy.url` when run by the `alembic` command with `-x`/ini settings of one's own."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import railwatch.adapters.alerts
import railwatch.adapters.counts  # noqa: F401  (both register their tables on the metadata)
from railwatch.adapters.db import Base
from railwatch.migrations import VERSION_TABLE

target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")  # SQLite can't ALTER much
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    with create_engine(context.config.get_main_option("sqlalchemy.url") or "").begin() as con:
        run(con)
