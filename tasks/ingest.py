"""Clip a batch of scenes of one AOI into the store (one Dask task carries several scenes)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.store import ObjectStore, open_store
from railwatch.aoi import AOI
from railwatch.cliparchive import write_collection
from railwatch.errors import InvalidInput, RailwatchError
from railwatch.grid import AOIGrid
from railwatch.ingest import clip_scene_pixels
from railwatch.measure import Reference, clip_arrays, load_reference, measure_pixels, reference_digest
from railwatch.models import ClipRef, MeasuredScene, SceneRef
from tasks.common import FailedScene, retrying


@task(name="clip-scenes", cache_policy=NONE, **retrying())
def clip_scenes(aoi: AOI, grid: AOIGrid, scenes: list[SceneRef], store_url: str, measure: bool = False
                ) -> list[ClipRef | MeasuredScene | FailedScene]:
    """Clip each scene; a scene with bad data is reported as failed, the others go on.

    With `measure` (the AOI's reference is final for these scenes: `reference_is_final`) each
    clip is also measured against the stored reference while its pixels are in memory, which
    saves reading it back and a task round; the measurement names the reference it used, and
    the flow measures again any clip whose reference was replaced since."""
    logger = get_run_logger()
    store = open_store(store_url)
    reference, problem = current_reference(aoi, grid, store) if measure else (None, None)
    if problem:
        logger.warning("%s: %s; its clips are measured in a later step", aoi.id, problem)
    out: list[ClipRef | MeasuredScene | FailedScene] = []
    for scene in scenes:
        try:
            clip, image, valid = clip_scene_pixels(scene, aoi, grid, store)
            if reference is None:
                out.append(clip)
            else:
                out.append(measure_pixels(clip, *clip_arrays(image, valid), grid, store, reference))
        except InvalidInput as exc:
            logger.error("scene %s failed: %s", scene.scene_id, exc)
            out.append(FailedScene(aoi_id=aoi.id, source=scene.source, scene_id=scene.scene_id,
                                   reason=str(exc)))
    return out


def current_reference(aoi: AOI, grid: AOIGrid, store: ObjectStore) -> tuple[Reference | None, str | None]:
    """The AOI's stored reference, or None and why not when there is none to measure against
    now (none yet, being replaced, unreadable): its clips are then measured in their own step,
    which reports what is wrong with it."""
    if reference_digest(store, aoi.id) is None:
        return None, None
    try:
        reference = load_reference(aoi, grid, store)
    except RailwatchError as exc:
        return None, f"the reference cannot be read ({exc})"
    return (reference, None) if reference.digest is not None else (None, None)


@task(name="index-clips", cache_policy=NONE, **retrying())
def index_clips(aoi: AOI, grid: AOIGrid, store_url: str) -> str:
    """(Re)write the AOI's STAC collection from the clip items in the store; its key."""
    return write_collection(aoi, grid, open_store(store_url))
