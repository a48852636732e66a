"""Write counts to the counts store and recompute the AOI's surge flags."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.counts import CountsStore
from railwatch.aoi import AOI
from railwatch.core.surge import SurgeParams, flag_surges
from railwatch.models import SceneCount
from tasks.common import retry_transient


@task(name="store-counts", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_transient)
def store_counts(aoi: AOI, counts: list[SceneCount], db: CountsStore,
                 detector_version: str) -> list[str]:
    """Upsert counts, mark scenes detected, flag surges over the whole series; flagged scene ids."""
    db.upsert_counts(counts)
    for c in counts:
        db.mark_scene(aoi.id, c.source, c.scene_id, "detected")
    series = db.scene_counts(aoi.id, detector_version)
    params = SurgeParams(**aoi.prop("surge", {}))
    flags = flag_surges([r.acquired for r in series], [r.cars for r in series],
                        [r.valid_fraction for r in series], aoi.prop("history_max_cars"), params)
    db.set_surge_flags(aoi.id, detector_version, {
        r.scene_id: (f.surge, f.ratio, f.baseline) for r, f in zip(series, flags, strict=True)
    })
    flagged = [r.scene_id for r, f in zip(series, flags, strict=True) if f.surge]
    if flagged:
        get_run_logger().warning("%s: surge flagged on %d scene(s)", aoi.id, len(flagged))
    return flagged
