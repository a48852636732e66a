"""Register clips to their AOI's reference, extract track profiles, and count."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.store import open_store
from railwatch.aoi import AOI
from railwatch.errors import InvalidInput
from railwatch.grid import AOIGrid
from railwatch.measure import detect_scenes, ensure_reference, load_reference, measure_clip
from railwatch.models import ClipRef, MeasuredScene, SceneCount
from tasks.common import FailedScene, retry_transient


@task(name="build-reference", cache_policy=NONE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_transient)
def build_reference(aoi: AOI, grid: AOIGrid, clips: list[ClipRef], store_url: str) -> bool:
    """Make sure the AOI has its reference composite (built once from its first clear clips)."""
    return ensure_reference(aoi, grid, clips, open_store(store_url))


@task(name="measure-clips", cache_policy=NONE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_transient)
def measure_clips(aoi: AOI, grid: AOIGrid, clips: list[ClipRef], store_url: str
                  ) -> list[MeasuredScene | FailedScene]:
    store = open_store(store_url)
    reference = load_reference(aoi, store)
    out: list[MeasuredScene | FailedScene] = []
    for clip in clips:
        try:
            out.append(measure_clip(clip, aoi, grid, store, reference))
        except InvalidInput as exc:
            get_run_logger().error("scene %s failed: %s", clip.scene.scene_id, exc)
            out.append(FailedScene(aoi_id=aoi.id, source=clip.scene.source,
                                   scene_id=clip.scene.scene_id, reason=str(exc)))
    return out


@task(name="detect-aoi", cache_policy=NONE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_transient)
def detect_aoi(aoi: AOI, grid: AOIGrid, targets: list[ClipRef], history: list[ClipRef],
               store_url: str) -> list[SceneCount]:
    """Counts for the new scenes of one AOI, each against its earlier scenes' background."""
    return detect_scenes(aoi, grid, targets, history, open_store(store_url))
