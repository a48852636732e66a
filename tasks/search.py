"""Find the scenes over an AOI (exactly once, through the registry) and make them readable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.catalogs import Catalog
from railwatch.adapters.counts import CountsStore
from railwatch.aoi import AOI
from railwatch.models import SceneRef
from railwatch.polling import Discovery, discover
from tasks.common import FailedScene, retrying


@task(name="discover-scenes", cache_policy=NONE, **retrying())
def discover_scenes(aoi: AOI, catalogs: list[Catalog], db: CountsStore, start: datetime, end: datetime,
                    overlap: timedelta | None = None) -> Discovery:
    """Search every catalog over the AOI in [start, end) and register what is new."""
    logger = get_run_logger()
    found = discover(aoi, catalogs, db, start, end, overlap)
    for source, item_id, reason in found.skipped:
        logger.warning("%s: skipped item %s: %s", source, item_id, reason)
    logger.info("%s: %d scene(s) found, %d new, %d new version(s)", aoi.id, found.found,
                len(found.new), len(found.revised))
    return found


def prepare_scenes(aoi: AOI, scenes: Sequence[SceneRef], catalogs: Sequence[Catalog]
                   ) -> tuple[list[SceneRef], list[FailedScene]]:
    """Scenes ready to read: sources with a `prepare` step (Planet's activation) run it first."""
    ready: list[SceneRef] = []
    failed: list[FailedScene] = []
    by_name = {c.name: c for c in catalogs}
    for source in dict.fromkeys(s.source for s in scenes):
        mine = [s for s in scenes if s.source == source]
        prepare = getattr(by_name.get(source), "prepare", None)
        if prepare is None:
            ready += mine
            continue
        done, not_ready = prepare(mine)
        ready += done
        failed += [FailedScene(aoi_id=aoi.id, source=s.source, scene_id=s.scene_id, reason=why)
                   for s, why in not_ready]
    return sorted(ready, key=lambda s: (s.acquired, s.scene_id)), failed
