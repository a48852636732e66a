"""`railwatch db upgrade|current`: the counts database's schema, for operators who migrate
before deploying (every railwatch process also upgrades on open, so this is never required)."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

db_app = typer.Typer(no_args_is_help=True, help="The counts database: its schema migrations.")


@db_app.command()
def upgrade() -> None:
    """Create or migrate the counts database (RAILWATCH_DATABASE_URL) to the newest schema."""
    from railwatch import migrations
    from railwatch.adapters.counts import CountsStore
    from railwatch.adapters.db import redacted
    from railwatch.settings import get_settings

    url = get_settings().db_url
    db = CountsStore(url)
    typer.echo(f"{redacted(url)}: at revision {migrations.current(db.engine)} (head)")


@db_app.command()
def current() -> None:
    """Show the counts database's revision and this railwatch's newest (changes nothing)."""
    from railwatch import migrations
    from railwatch.adapters.db import database_error, open_engine, redacted
    from railwatch.settings import get_settings

    url = get_settings().db_url
    try:
        revision = migrations.current(open_engine(url))
    except SQLAlchemyError as exc:
        raise database_error(url, exc) from exc
    head = migrations.head()
    state = ("up to date" if revision == head else
             "not migrated yet: run `railwatch db upgrade`" if revision is None else
             f"behind: run `railwatch db upgrade` to reach {head}")
    typer.echo(f"{redacted(url)}: revision {revision or '-'}, head {head} ({state})")
