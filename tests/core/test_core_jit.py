"""The core's compiled functions load where numba cannot cache them (a read-only install run
by a user without a writable home): compiled per process, not an import error."""

from __future__ import annotations

import numba.core.caching as caching
import pytest
from numba import njit

from railwatch.core.jit import compiled


def add_one(x: int) -> int:
    return x + 1


def test_without_a_writable_cache_location_the_core_still_compiles(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])  # no location at all
    with pytest.raises(RuntimeError, match="no locator available"):
        njit(cache=True)(add_one)  # what numba itself does: the case is real
    assert compiled(add_one)(41) == 42
