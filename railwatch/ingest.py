"""Ingestion: clip one scene onto its AOI's grid and write image + usable-data mask to the store.

Keys are deterministic (``{aoi}/{yyyy}/{mm}/{dd}/{source}-{scene}/image.tif``) and the store
skips identical objects, so re-clipping a scene rewrites nothing.
"""

from __future__ import annotations

import re
import time

import numpy as np
from rasterio.enums import Resampling

from railwatch.adapters.raster import (
    encode_cog,
    gdal_env,
    polygon_pixels,
    read_on_grid,
    usable_mask,
)
from railwatch.adapters.store import ObjectStore
from railwatch.aoi import AOI
from railwatch.errors import SceneError
from railwatch.grid import AOIGrid
from railwatch.models import ClipRef, SceneRef

BAND_NAMES = ("blue", "green", "red", "nir")


def scene_prefix(aoi_id: str, scene: SceneRef) -> str:
    """The store folder of one (AOI, scene)."""
    source = re.sub(r"[^A-Za-z0-9._-]+", "-", scene.source)
    when = scene.acquired
    return f"{aoi_id}/{when:%Y/%m/%d}/{source}-{scene.scene_id}"


def clip_scene(scene: SceneRef, aoi: AOI, grid: AOIGrid, store: ObjectStore) -> ClipRef:
    """Read only the AOI window of the scene (and its mask) and store both as COGs."""
    started = time.perf_counter()
    with gdal_env():
        image, has_data = read_on_grid(scene.image_href, grid, scene.image_bands, Resampling.bilinear)
        if scene.mask_href and scene.mask_kind:
            mask_raw, mask_has_data = read_on_grid(scene.mask_href, grid, [1], Resampling.nearest)
            usable = usable_mask(mask_raw, scene.mask_kind) & mask_has_data
        else:
            usable = np.ones_like(has_data)
    if len(scene.image_bands) < 3:
        raise SceneError(f"scene {scene.scene_id}: needs blue, green and red bands")
    inside = polygon_pixels(grid, aoi.geometry)
    if not has_data[inside].any():
        raise SceneError(f"scene {scene.scene_id}: does not overlap AOI {aoi.id}")
    valid = usable & has_data
    prefix = scene_prefix(aoi.id, scene)
    image_key, mask_key = f"{prefix}/image.tif", f"{prefix}/mask.tif"
    store.put_bytes(
        image_key,
        encode_cog(image, grid, nodata=0, descriptions=BAND_NAMES[: image.shape[0]]),
    )
    store.put_bytes(mask_key, encode_cog(valid[np.newaxis].astype("uint8"), grid, descriptions=["usable"]))
    return ClipRef(
        aoi_id=aoi.id,
        scene=scene,
        image_key=image_key,
        mask_key=mask_key,
        valid_fraction=float(valid[inside].mean()),
        seconds=time.perf_counter() - started,
    )
