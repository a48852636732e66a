"""One Prefect task (one Dask task) runs one step over several AOIs' pieces of work.

Task runs then follow the amount of work, not the number of AOIs × date chunks: Prefect and
Dask cost ≈75 ms per task here and Prefect servers struggle past a few thousand task runs.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from tasks.common import retrying
from tasks.ingest import clip_scenes, index_clips
from tasks.measure import build_reference, detect_aoi, measure_clips, update_background
from tasks.publish import publish_alerts, render_quicklooks
from tasks.search import discover_scenes
from tasks.store import store_counts

STEPS = {t.name: t for t in (discover_scenes, clip_scenes, index_clips, build_reference, measure_clips,
                             update_background, detect_aoi, store_counts, render_quicklooks,
                             publish_alerts)}


@task(name="batch", task_run_name="{step}", cache_policy=NONE, **retrying())
def run_batch(step: str, calls: list[tuple[Any, ...]]) -> list[Any]:
    """The result of `step` for each call's arguments, in order (every step is idempotent, so a
    retry of the whole batch is safe)."""
    fn = STEPS[step].fn
    return [fn(*args) for args in calls]
