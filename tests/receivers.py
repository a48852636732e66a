"""The example webhook receiver (examples/webhook_receiver.py), served on loopback for tests."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver",
                                                  REPO / "examples" / "webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


receiver_example = load_example()


@contextmanager
def serving(secret: str, handler: Any = None) -> Iterator[Any]:
    """A running receiver; `.handled_bodies` lists the alerts it handled, in order."""
    handled: list[dict[str, Any]] = []
    server = receiver_example.Receiver(("127.0.0.1", 0), secret.encode(), handled.append,
                                       handler=handler)
    server.handled_bodies = handled
    server.released = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
