"""The core's numba decorator: compiled on first use, cached on disk beside the module (or in
numba's user cache, NUMBA_CACHE_DIR), the GIL released (Dask workers run threads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from numba import njit

compiled = cast(Callable[[Callable[..., Any]], Callable[..., Any]], njit(cache=True, nogil=True))
