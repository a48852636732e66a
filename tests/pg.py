"""A throwaway PostgreSQL server on loopback from Debian's packages, for the STAC API and the
counts-store tests. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port


def postgres_bin(postgis: bool = False) -> Path | None:
    """The newest folder of PostgreSQL's server binaries (with PostGIS beside it, if asked)."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        control = Path("/usr/share/postgresql") / folder.parent.name / "extension" / "postgis.control"
        if (folder / "initdb").exists() and (control.exists() or not postgis):
            return folder
    return None


def why_no_postgres(postgis: bool = False, modules: tuple[str, ...] = ("psycopg",)) -> str | None:
    """Why the server (or the client modules) cannot be used here, or None when they can."""
    if postgres_bin(postgis) is None:
        return ("PostgreSQL 15" + (" + PostGIS" if postgis else "") + " is not installed: apt-get "
                "install -y postgresql-15 postgresql-15-postgis-3 (.ci/run does this)")
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: pip install -e '.[test]'"
    return None


def _as_pg(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass(frozen=True)
class PgServer:
    """A running server: trust authentication for `postgres` on 127.0.0.1:`port`."""

    port: int

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL railwatch takes (psycopg 3)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "rw") -> str:
        """Create an empty database with a unique name, so tests share nothing; its name."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return name


@contextlib.contextmanager
def running_postgres(postgis: bool = False) -> Iterator[PgServer]:
    """initdb a temporary cluster, start it on a free loopback port, stop and delete it after."""
    bin_dir = postgres_bin(postgis)
    assert bin_dir is not None, why_no_postgres(postgis)
    root = Path(tempfile.mkdtemp(prefix="rw-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
    port = free_port()
    try:
        subprocess.run(_as_pg([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                               "--auth=trust", "--locale=C.UTF-8"]), check=True, capture_output=True)
        subprocess.run(_as_pg([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"),
                               "-w", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                               "-c fsync=off", "start"]), check=True, capture_output=True)
        yield PgServer(port)
    finally:
        subprocess.run(_as_pg([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
