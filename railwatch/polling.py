"""Discovery, exactly once: search each catalog, register what it found, move the watch mark.

A watch searches each (AOI, source) only for scenes published (or updated) after its mark less
an overlap window (late or slowly indexed scenes are not missed), registers them in the counts
database (which keeps each (AOI, source, scene) once and counts new versions), then advances
the mark. A backfill searches its whole range and leaves the marks alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from railwatch.adapters.catalogs import Catalog
from railwatch.adapters.counts import CountsStore
from railwatch.aoi import AOI
from railwatch.models import SceneRef

log = logging.getLogger(__name__)


@dataclass
class Discovery:
    """What one AOI's search found: new scenes, new versions, known ones, skipped items."""

    scenes: list[SceneRef] = field(default_factory=list)
    new: list[SceneRef] = field(default_factory=list)
    revised: list[SceneRef] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (source, item, reason)

    @property
    def found(self) -> int:
        return len(self.scenes)


def discover(aoi: AOI, catalogs: Sequence[Catalog], db: CountsStore, start: datetime, end: datetime,
             overlap: timedelta | None = None) -> Discovery:
    """Search and register; with `overlap` (a watch) search past each mark and advance it."""
    out = Discovery()
    for catalog in catalogs:
        mark = db.poll_mark(aoi.id, catalog.name) if overlap is not None else None
        after = mark - overlap if mark is not None and overlap is not None else None
        result = catalog.search(aoi, start, end, published_after=after)
        registered = db.register_scenes(aoi.id, result.scenes)
        out.scenes += result.scenes
        out.new += registered.new
        out.revised += registered.revised
        out.skipped += [(catalog.name, item, reason) for item, reason in result.skipped]
        newest = max((s.published for s in result.scenes if s.published), default=None)
        if overlap is not None and newest is not None:
            db.advance_mark(aoi.id, catalog.name, newest)
        log.info("%s over %s: %d found, %d new, %d new version(s), %d skipped (published after %s)",
                 catalog.name, aoi.id, len(result.scenes), len(registered.new), len(registered.revised),
                 len(result.skipped), after)
    return out
