"""How a backfill is cut up: date chunks (the unit of resumption and progress) and packs of
AOI-scenes (the unit of a Dask task)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TypeVar

T = TypeVar("T")
Pack = list[tuple[str, list[T]]]


def date_chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[first, last] inclusive date ranges of at most `days` days covering start..end."""
    out: list[tuple[date, date]] = []
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=days - 1))
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


def pack(work: Mapping[str, Sequence[T]], size: int, workers: int, per_worker: int = 2) -> list[Pack[T]]:
    """Packs of at most `size` items over all AOIs (at least `per_worker` per worker when there is
    enough work, so that a slow pack does not idle the others): an AOI's items may span packs, and
    a pack may hold several AOIs' items."""
    total = sum(len(items) for items in work.values())
    size = max(1, min(size, math.ceil(total / (per_worker * workers))))
    packs: list[Pack[T]] = []
    current: Pack[T] = []
    room = size
    for key, items in work.items():
        rest = list(items)
        while rest:
            current.append((key, rest[:room]))
            room -= len(rest[:room])
            rest = rest[len(current[-1][1]):]
            if room == 0:
                packs.append(current)
                current, room = [], size
    if current:
        packs.append(current)
    return packs

