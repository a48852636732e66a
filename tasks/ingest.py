"""Clip a batch of scenes of one AOI into the store (one Dask task carries several scenes)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from railwatch.adapters.store import open_store
from railwatch.aoi import AOI
from railwatch.cliparchive import write_collection
from railwatch.errors import InvalidInput
from railwatch.grid import AOIGrid
from railwatch.ingest import clip_scene
from railwatch.models import ClipRef, SceneRef
from tasks.common import FailedScene, retrying


@task(name="clip-scenes", cache_policy=NONE, **retrying())
def clip_scenes(aoi: AOI, grid: AOIGrid, scenes: list[SceneRef], store_url: str
                ) -> list[ClipRef | FailedScene]:
    """Clip each scene; a scene with bad data is reported as failed, the others go on."""
    logger = get_run_logger()
    store = open_store(store_url)
    out: list[ClipRef | FailedScene] = []
    for scene in scenes:
        try:
            out.append(clip_scene(scene, aoi, grid, store))
        except InvalidInput as exc:
            logger.error("scene %s failed: %s", scene.scene_id, exc)
            out.append(FailedScene(aoi_id=aoi.id, source=scene.source, scene_id=scene.scene_id,
                                   reason=str(exc)))
    return out


@task(name="index-clips", cache_policy=NONE, **retrying())
def index_clips(aoi: AOI, grid: AOIGrid, store_url: str) -> str:
    """(Re)write the AOI's STAC collection from the clip items in the store; its key."""
    return write_collection(aoi, grid, open_store(store_url))
