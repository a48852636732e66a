"""Real servers on loopback for tests and benches: moto's S3 server as a subprocess, a counting
(and, on demand, failing) HTTP proxy in front of it, and file servers without and with Range support.

Nothing here mocks a client: requests leave the process over TCP and are answered by a server.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, seconds: float = 30.0, process: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    """Poll `url` until it answers anything over HTTP; fail at once if the server's `process` exits."""
    deadline = time.monotonic() + seconds
    while True:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
            raise RuntimeError(f"the server for {url} exited ({process.returncode}):\n{tail}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT`` as a subprocess (state lives in that process)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        import os

        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(self._env or {})},
        )
        wait_until_up(f"{self.endpoint}/moto-api/")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Exchange:
    """One request through the proxy."""

    method: str
    path: str
    status: int
    sent: int  # request body bytes
    received: int  # response body bytes


@dataclass
class Traffic:
    """What went through a proxy; thread-safe."""

    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def count(self, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for e in self.exchanges if method in (None, e.method))

    def received(self, method: str = "GET") -> int:
        with self.lock:
            return sum(e.received for e in self.exchanges if e.method == method)

    def clear(self) -> None:
        with self.lock:
            self.exchanges.clear()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _s3_error(self, status: int, code: str, message: str) -> None:
        """Answer as S3 does when it refuses a request (an XML error document)."""
        self._read_body()
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.server.proxy.traffic.add(Exchange(self.command, self.path, status, 0, len(body)))
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refused(self) -> bool:
        """Play S3's refusals: a wrong access key, or an injected burst of server errors."""
        proxy = self.server.proxy
        auth = self.headers.get("Authorization", "")
        if proxy.access_key and f"Credential={proxy.access_key}/" not in auth:
            self._s3_error(403, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist in our records.")
            return True
        with proxy.lock:
            failing = proxy.failures > 0 and self.command in proxy.failure_methods
            proxy.failures -= failing
        if failing:
            self._s3_error(proxy.failure_status, "SlowDown" if proxy.failure_status == 503
                           else "InternalError", "injected by the test proxy")
            return True
        return False

    def _forward(self) -> None:
        proxy = self.server.proxy
        if proxy.dead:  # the server is gone: the connection closes without an answer
            self.close_connection = True
            return
        if proxy.delay_s:
            time.sleep(proxy.delay_s)
        if self._refused():
            return
        if self.command == "PUT" and proxy.puts_until_death is not None:
            proxy.puts_until_death -= 1
            if proxy.puts_until_death == 0:  # die in the middle of this upload
                proxy.dead = True
                self.rfile.read(int(self.headers.get("Content-Length", 0)) // 2)
                self.close_connection = True
                return
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.command != "HEAD" and body:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            # counted before the client has its answer, so a count taken right after a call is complete
            proxy.traffic.add(Exchange(self.command, self.path, response.status, len(body), len(data)))
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and (key.lower() != "content-length"
                                                       or self.command == "HEAD"):
                    self.send_header(key, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: CountingProxy


class CountingProxy:
    """An HTTP proxy on loopback in front of `upstream`: counts requests and body bytes, and can
    play a server that stops in the middle of an upload (`die_during_put`)."""

    def __init__(self, upstream: str) -> None:
        host_port = upstream.split("://", 1)[1].rstrip("/")
        self.upstream_host, port = host_port.split(":")
        self.upstream_port = int(port)
        self.traffic = Traffic()
        self.dead = False
        self.puts_until_death: int | None = None
        self.lock = threading.Lock()
        self.failures = 0  # the next requests answered with `failure_status`
        self.failure_status = 503
        self.failure_methods: tuple[str, ...] = ()
        self.delay_s = 0.0  # added before every answer
        self.access_key = ""  # when set, any other access key is refused (InvalidAccessKeyId)
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.proxy = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def die_during_put(self, nth: int = 1) -> None:
        """The `nth` PUT from now is cut half way, and nothing is answered after it."""
        self.puts_until_death = nth

    def revive(self) -> None:
        self.dead, self.puts_until_death = False, None

    def fail_next(self, count: int, status: int = 503,
                  methods: tuple[str, ...] = ("GET", "HEAD", "PUT", "POST", "DELETE")) -> None:
        """Answer the next `count` requests of `methods` with `status` (503 SlowDown or 500
        InternalError)."""
        with self.lock:
            self.failures, self.failure_status, self.failure_methods = count, status, methods

    def heal(self) -> None:
        """Every injected fault cleared."""
        self.revive()
        self.fail_next(0)
        self.delay_s, self.access_key = 0.0, ""

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _NoRangeHandler(SimpleHTTPRequestHandler):
    """Python's file server: it ignores Range headers and always sends the whole file (200)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _RangeHandler(_NoRangeHandler):
    """A file server that answers single byte ranges with 206, as S3 and CDNs answer GDAL (whose
    parallel multi-range reads are single-range GETs), reading only the bytes asked for — unlike
    moto, which copies the whole object on every GET. Keep-alive, like a real origin."""

    protocol_version = "HTTP/1.1"
    server: _FileHTTPServer

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        if self.server.stall and self.server.stall(self.path):  # a server that went silent
            self.server.stopped.wait()
            self.close_connection = True
            return
        refused = self.server.refuse(self.path) if self.server.refuse else None
        if refused:  # e.g. a signed URL that has expired
            self.send_error(refused)
            return
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        if not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        if match := _RANGE.fullmatch(self.headers.get("Range", "").strip()):
            status = 206
            if match[1]:
                first, last = int(match[1]), min(int(match[2] or size - 1), size - 1)
            else:  # a suffix: the last N bytes
                first = max(0, size - int(match[2]))
        if first > last:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = last - first + 1
        self.server.traffic.add(Exchange(self.command, self.path, status, 0, length if send_body else 0))
        link = self.server.link
        if link is not None:
            link.wait_round_trip()
        self.send_response(status)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if send_body:
            with path.open("rb") as source:
                source.seek(first)
                while length > 0 and (chunk := source.read(min(length, 1 << 18))):
                    if link is not None:
                        link.send(len(chunk))
                    self.wfile.write(chunk)
                    length -= len(chunk)


class ShapedLink:
    """A network link between the clients and a file server: every request waits one round trip
    before its answer starts, and all answers share one bandwidth (bytes are paced on a common
    clock, so parallel requests split the link, as they would on a real one)."""

    def __init__(self, bandwidth_bps: float, rtt_s: float) -> None:
        self.bytes_per_s = bandwidth_bps / 8
        self.rtt_s = rtt_s
        self._free_at = 0.0  # when the link has sent everything booked so far
        self._lock = threading.Lock()

    def wait_round_trip(self) -> None:
        time.sleep(self.rtt_s)

    def send(self, size: int) -> None:
        """Book `size` bytes on the link and wait until they would have crossed it."""
        with self._lock:
            self._free_at = max(self._free_at, time.perf_counter()) + size / self.bytes_per_s
            done = self._free_at
        time.sleep(max(0.0, done - time.perf_counter()))


class _FileHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    traffic: Traffic
    refuse: Callable[[str], int | None] | None = None  # request path -> an error status to answer
    stall: Callable[[str], bool] | None = None  # request path -> never answer it (until stopped)
    stopped: threading.Event
    link: ShapedLink | None = None  # latency and bandwidth of the way to the clients


class _FileServer:
    """A folder served over HTTP on loopback by `handler`; `traffic` counts what it answered."""

    def __init__(self, folder: Path, handler: type[SimpleHTTPRequestHandler],
                 refuse: Callable[[str], int | None] | None = None,
                 stall: Callable[[str], bool] | None = None) -> None:
        self._server = _FileHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
        self._server.traffic = self.traffic = Traffic()
        self._server.refuse, self._server.stall = refuse, stall
        self._server.stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.stopped.set()
        self._server.shutdown()
        self._server.server_close()


class PlainFileServer(_FileServer):
    """A folder served over HTTP on loopback without Range support (like some download URLs)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, _NoRangeHandler)


class RangeFileServer(_FileServer):
    """A folder served over HTTP on loopback with Range support (like S3 or a CDN, minus moto's
    whole-object copy per GET): the bench's source for throughput without moto's bottleneck.
    `refuse` (request path -> status or None) answers some requests with an error instead;
    `stall` (request path -> bool) leaves some unanswered, the connection open and silent."""

    def __init__(self, folder: Path, refuse: Callable[[str], int | None] | None = None,
                 link: ShapedLink | None = None, stall: Callable[[str], bool] | None = None) -> None:
        super().__init__(folder, _RangeHandler, refuse, stall)
        self._server.link = link
