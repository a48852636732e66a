"""Search the configured catalogs for scenes over an AOI."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.catalog import Catalog
from railwatch.aoi import AOI
from railwatch.models import SceneRef
from tasks.common import retry_transient


@task(name="search-scenes", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_transient)
def search_scenes(aoi: AOI, catalogs: list[Catalog], start: datetime, end: datetime) -> list[SceneRef]:
    """Every scene over the AOI in [start, end) from every catalog, oldest first."""
    logger = get_run_logger()
    scenes: list[SceneRef] = []
    for catalog in catalogs:
        result = catalog.search(aoi, start, end)
        for item_id, reason in result.skipped:
            logger.warning("%s: skipped item %s: %s", catalog.name, item_id, reason)
        logger.info("%s: %d scene(s) over %s", catalog.name, len(result.scenes), aoi.id)
        scenes.extend(result.scenes)
    return sorted(scenes, key=lambda s: s.acquired)
