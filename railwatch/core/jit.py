"""The core's numba decorator: compiled on first use, cached on disk beside the module (or in
numba's user cache, NUMBA_CACHE_DIR), the GIL released (Dask workers run threads). Where no
cache location is writable (a read-only install run by a user without a home), the functions
are compiled in each process instead of failing the import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)
