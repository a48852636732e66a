"""Ctrl-C, noted as well as raised. A library may turn the KeyboardInterrupt into another exception
where it lands (pydantic's serializer does: seen in CI), and what runs after it must still know
the user asked to stop: the CLI exits 130, and a failing flow leaves at once instead of waiting
for batches whose Dask workers the same Ctrl-C has stopped (`flows.common.settled`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_pressed = threading.Event()


def interrupted() -> bool:
    """Whether Ctrl-C was pressed inside the current `noting_ctrl_c` block."""
    return _pressed.is_set()


@contextmanager
def noting_ctrl_c() -> Iterator[None]:
    """Within the block SIGINT raises KeyboardInterrupt, as Python's default handler does, and is
    remembered (`interrupted`); the previous handler is put back after. Only the main thread may
    set a signal handler: in any other thread the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        _pressed.set()
        raise KeyboardInterrupt

    _pressed.clear()
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pressed.clear()
