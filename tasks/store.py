"""Write counts to the counts store and recompute the AOI's surge flags."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.counts import CountsStore
from railwatch.alerts import flag_stored_series
from railwatch.aoi import AOI
from railwatch.models import SceneCount
from tasks.common import retrying


@task(name="store-counts", cache_policy=NONE, **retrying())
def store_counts(aoi: AOI, counts: list[SceneCount], db: CountsStore,
                 detector_version: str) -> list[str]:
    """Upsert counts, mark scenes detected, flag surges over the whole series; flagged scene ids."""
    db.upsert_counts(counts)
    db.mark_scenes("detected", scenes=[(aoi.id, c.source, c.scene_id) for c in counts])
    flagged = flag_stored_series(aoi, db, detector_version)
    if flagged:
        get_run_logger().warning("%s: surge flagged on %d scene(s)", aoi.id, len(flagged))
    return flagged
