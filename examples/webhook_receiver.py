"""A railwatch webhook receiver (standard library only): verifies the signature, drops repeats.

    RAILWATCH_WEBHOOK_SECRET=s3cret python examples/webhook_receiver.py --port 8765
    RAILWATCH_WEBHOOK_URLS='["http://127.0.0.1:8765/railwatch"]' \
    RAILWATCH_WEBHOOK_SECRET=s3cret railwatch demo

Answers 401 to a body whose `X-Railwatch-Signature` is not HMAC-SHA256(secret, raw body),
and 200 without handling it again to a body whose `Idempotency-Key` it has already handled
(railwatch retries a delivery it could not confirm, so a receiver may see a body twice).
A real receiver keeps the handled keys in its database rather than in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[dict[str, Any]], None]


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


class Receiver(ThreadingHTTPServer):
    """An HTTP server that hands each new, authentic alert to `handle` exactly once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], secret: bytes, handle: Handler,
                 handler: type[BaseHTTPRequestHandler] | None = None) -> None:
        super().__init__(address, handler or RequestHandler)
        self.secret, self.handle = secret, handle
        self.handled: set[str] = set()
        self.lock = threading.Lock()


class RequestHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not signature_ok(self.server.secret, body, self.headers.get("X-Railwatch-Signature")):
            return self.answer(401, {"error": "bad signature"})
        key = self.headers.get("Idempotency-Key", "")
        with self.server.lock:  # one handler per key, even when a retry races the original
            if key in self.server.handled:
                return self.answer(200, {"duplicate": True})
            self.server.handle(json.loads(body))
            self.server.handled.add(key)
        self.answer(200, {"ok": True})

    def answer(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; the handler prints what matters


def print_alert(alert: dict[str, Any]) -> None:
    sys.stdout.write(f"{alert['event']}: {alert['summary']}\n  quicklook: "
                     f"{alert['scene']['links']['quicklook']}\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    secret = os.environ.get("RAILWATCH_WEBHOOK_SECRET")
    if not secret:
        sys.exit("webhook_receiver: set RAILWATCH_WEBHOOK_SECRET to the secret railwatch signs with")
    server = Receiver((args.host, args.port), secret.encode(), print_alert)
    sys.stdout.write(f"listening on http://{args.host}:{server.server_port}/\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
