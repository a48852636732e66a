"""Register clips to their AOI's reference, extract track profiles, and count."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.store import open_store
from railwatch.aoi import AOI
from railwatch.background import update_model
from railwatch.errors import InvalidInput
from railwatch.grid import AOIGrid
from railwatch.measure import detect_scenes, ensure_reference, load_reference, measure_clip
from railwatch.models import ClipRef, MeasuredScene, SceneCount
from tasks.common import FailedScene, retrying


@task(name="build-reference", cache_policy=NONE, **retrying())
def build_reference(aoi: AOI, grid: AOIGrid, clips: list[ClipRef], store_url: str) -> str:
    """Make the AOI's reference composite match its first clear clips (`clips`: all of the AOI's
    clips): "kept", "built" (everything measured before must be measured again) or "none"."""
    return ensure_reference(aoi, grid, clips, open_store(store_url))


@task(name="measure-clips", cache_policy=NONE, **retrying())
def measure_clips(aoi: AOI, grid: AOIGrid, clips: list[ClipRef], store_url: str
                  ) -> list[MeasuredScene | FailedScene]:
    store = open_store(store_url)
    reference = load_reference(aoi, grid, store)
    out: list[MeasuredScene | FailedScene] = []
    for clip in clips:
        try:
            out.append(measure_clip(clip, aoi, grid, store, reference))
        except InvalidInput as exc:
            get_run_logger().error("scene %s failed: %s", clip.scene.scene_id, exc)
            out.append(FailedScene(aoi_id=aoi.id, source=clip.scene.source,
                                   scene_id=clip.scene.scene_id, reason=str(exc)))
    return out


@task(name="update-background", cache_policy=NONE, **retrying())
def update_background(aoi: AOI, clips: list[ClipRef], history: list[ClipRef], store_url: str) -> str:
    """Merge an AOI's newly measured clear scenes into its background model; its revision.

    One such task per AOI and flow run, before the AOI's detection tasks (which only read the
    model), so an AOI's model has a single writer.
    """
    done = update_model(aoi.id, clips, history, open_store(store_url))
    if done.rebuilt:
        get_run_logger().warning("%s: background model rebuilt from the stored profiles (%s)",
                                 aoi.id, done.rebuilt)
    get_run_logger().info("%s: background model %s, %d scene(s), %d added%s", aoi.id,
                          done.revision, done.scenes, done.added, "" if done.written else ", unchanged")
    return done.revision


@task(name="detect-aoi", cache_policy=NONE, **retrying())
def detect_aoi(aoi: AOI, grid: AOIGrid, targets: list[ClipRef], history: list[ClipRef],
               store_url: str) -> list[SceneCount]:
    """Counts for the new scenes of one AOI, each against its earlier scenes' background."""
    counts, problem = detect_scenes(aoi, grid, targets, history, open_store(store_url))
    if problem:
        get_run_logger().warning("%s: background model unusable (%s); computed from the stored "
                                 "profiles", aoi.id, problem)
    return counts
