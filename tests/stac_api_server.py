"""A real STAC API on loopback for tests: PostgreSQL + PostGIS (tests/pg.py) + pgstac +
stac-fastapi-pgstac (recipe: ../shared/stack-notes.md), and a small fault-injecting HTTP proxy
to put in front of it.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from tests.pg import PgServer, why_no_postgres
from tests.servers import free_port

STARTUP_LIMIT_S = 60.0
BROKEN = "20230905_broken_no_analytic"  # the loaded item that lacks its image asset


def why_no_server() -> str | None:
    """Why the STAC API cannot be started here, or None when it can."""
    return why_no_postgres(postgis=True, modules=("pypgstac", "stac_fastapi.pgstac", "uvicorn"))


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the STAC API exited with code {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the STAC API did not answer at {url} within {STARTUP_LIMIT_S:.0f} s")


@contextlib.contextmanager
def running_stac_api(server: PgServer, collection: dict[str, Any],
                     items: list[dict[str, Any]]) -> Iterator[str]:
    """Load pgstac + `collection` + `items` into the server's `postgres` database, serve the
    API; yield its URL."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": "postgres",
           "PGPASSWORD": "postgres", "PGDATABASE": "postgres"}
    db = PgstacDB(dsn=server.dsn())
    Migrate(db).run_migration()
    loader = Loader(db)
    loader.load_collections(iter([collection]), Methods.insert_ignore)
    loader.load_items(iter(items), Methods.insert_ignore)
    db.close()
    api_port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"],
        env={**env, "ENABLE_TRANSACTIONS_EXTENSIONS": "true"})
    try:
        url = f"http://127.0.0.1:{api_port}"
        _wait_for(url, api)
        yield url
    finally:
        api.terminate()
        api.wait(timeout=30)


class FaultProxy:
    """Forwards every request to `upstream`, but answers the next `burst` ones with an error —
    or, armed with `cut`, the next `burst` search pages with half their body: "short" sends the
    whole body's Content-Length and closes the connection half way, "json" sends half the body
    as a complete answer (invalid JSON).

    Records (monotonic time, status) per request, so tests can check that a client waited as
    long as the ``Retry-After`` it was given.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.burst = 0
        self.status = 429
        self.retry_after = "1"
        self.cut = ""
        self.log: list[tuple[float, int]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def arm(self, burst: int, status: int = 429, retry_after: str = "1", cut: str = "") -> None:
        assert cut in ("", "short", "json"), cut
        with self._lock:
            self.burst, self.status, self.retry_after, self.cut = burst, status, retry_after, cut
            self.log.clear()
            self.paths.clear()

    def _fault(self, path: str) -> int | None:
        with self._lock:
            if self.burst > 0 and (not self.cut or path.startswith("/search")):
                self.burst -= 1
                return self.status
            return None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                fault = proxy._fault(self.path)
                if fault is not None and not proxy.cut:
                    body = b'{"code": "TooManyRequests", "description": "max rate reached"}'
                    proxy.log.append((time.monotonic(), fault))  # before the client can see it
                    self.send_response(fault)
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("content-length", "connection", "accept-encoding")}
                req = urllib.request.Request(proxy.upstream + self.path, data=data, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, body, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
                except urllib.error.HTTPError as err:
                    status, body, ctype = err.code, err.read(), err.headers.get("Content-Type")
                if fault is not None:  # a cut page: half the body
                    self._send_cut(body)
                    return
                # Recorded before answering: a client that has its answer may re-arm the proxy,
                # and an entry appended after that would land in the next test's log.
                proxy.log.append((time.monotonic(), status))
                proxy.paths.append(self.command + " " + self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_cut(self, body: bytes) -> None:
                half = body[: len(body) // 2]
                proxy.log.append((time.monotonic(), 200))
                proxy.paths.append(f"{self.command} {self.path} (cut: {proxy.cut})")
                self.send_response(200)
                self.send_header("Content-Type", "application/geo+json")
                self.send_header("Content-Length", str(len(body if proxy.cut == "short" else half)))
                self.end_headers()
                self.wfile.write(half)
                self.wfile.flush()
                self.close_connection = True

            do_GET = do_POST = do_PUT = _forward

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
