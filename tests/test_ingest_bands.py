"""Sentinel-2-like items (one COG per band, a 20 m SCL mask) ingested from a real S3 server (moto on
loopback): each band's AOI window is read onto the AOI grid and stacked, the SCL with nearest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
from conftest import S3
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rasterio.enums import Resampling

from railwatch.adapters.catalogs.base import ASSET_MAPS, scene_from_item
from railwatch.adapters.raster import decode_raster, gdal_env, read_on_grid, usable_mask
from railwatch.adapters.store import S3Store
from railwatch.aoi import AOI
from railwatch.cliparchive import item_key
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.ingest import clip_scene
from railwatch.models import SceneRef
from tests.rasters import BandScene, band_scene

COG = "image/tiff; application=geotiff; profile=cloud-optimized"


@pytest.fixture(scope="module")
def grid(aoi: AOI) -> AOIGrid:
    return aoi_grid(aoi, gsd_m=10.0)  # a Sentinel-2 AOI grid: the bands' 10 m


@pytest.fixture(scope="module")
def scene(grid: AOIGrid) -> BandScene:
    return band_scene(grid)


def upload_bands(s3: S3, scene: BandScene, keys: tuple[str, ...]) -> dict[str, str]:
    """The four band COGs and the SCL under `keys` (band keys, then the SCL's); their hrefs."""
    bucket = s3.new_bucket("sentinel")
    bodies = [*scene.band_cogs(), scene.scl_cog()]
    for key, body in zip(keys, bodies, strict=True):
        s3.client.put_object(Bucket=bucket, Key=f"T52TFN/{key}.tif", Body=body)
    return {key: f"s3://{bucket}/T52TFN/{key}.tif" for key in keys}


def test_per_band_assets_from_s3_equal_a_local_read_pixel_for_pixel(
        s3: S3, aoi: AOI, grid: AOIGrid, scene: BandScene, tmp_path: Path) -> None:
    hrefs = upload_bands(s3, scene, ("B02", "B03", "B04", "B08", "SCL"))
    ref = SceneRef(source="stac:sentinel-2-l2a", scene_id="S2B_52TFN_20230905_0_L2A",
                   acquired=datetime(2023, 9, 5, 2, 16, tzinfo=UTC), image_href=hrefs["B02"],
                   image_bands=(1,), band_hrefs=tuple(hrefs[k] for k in ("B02", "B03", "B04", "B08")),
                   mask_href=hrefs["SCL"], mask_kind="scl")
    store = S3Store(s3.new_bucket("clips"), s3=s3.config)

    clip = clip_scene(ref, aoi, grid, store, s3=s3.config)

    image = decode_raster(store.get_bytes(clip.image_key))
    mask = decode_raster(store.get_bytes(clip.mask_key))[0]
    local = []
    for i, body in enumerate([*scene.band_cogs(), scene.scl_cog()]):
        (tmp_path / f"{i}.tif").write_bytes(body)
        local.append(str(tmp_path / f"{i}.tif"))
    with gdal_env():
        direct = np.concatenate([read_on_grid(p, grid, (1,))[0] for p in local[:4]])
        scl, scl_has_data = read_on_grid(local[4], grid, (1,), Resampling.nearest)
    np.testing.assert_array_equal(image, direct)
    np.testing.assert_array_equal(image, scene.window(grid))
    np.testing.assert_array_equal(mask, usable_mask(scl, "scl") & scl_has_data)
    np.testing.assert_array_equal(mask.astype(bool), scene.usable_window(grid))
    assert 0 < mask.sum() < mask.size  # the cloud is masked out, the rest is usable


@pytest.mark.parametrize("asset_map", ["sentinel-2-l2a", "pc-sentinel-2-l2a"])
def test_a_stac_item_with_per_band_assets_is_clipped_end_to_end(
        asset_map: str, s3: S3, aoi: AOI, grid: AOIGrid, scene: BandScene) -> None:
    assets = ASSET_MAPS[asset_map]
    scl_key = assets.masks[0][0]
    hrefs = upload_bands(s3, scene, (*assets.bands, scl_key))
    item = pystac.Item(id="S2B_52TFN_20230905_0_L2A", geometry=None, bbox=None,
                       datetime=datetime(2023, 9, 5, 2, 16, tzinfo=UTC),
                       properties={"eo:cloud_cover": 12.5, "updated": "2023-09-05T09:00:00Z"})
    for key, href in hrefs.items():
        item.add_asset(key, pystac.Asset(href, media_type=COG, roles=["data"]))
    item.add_asset("visual", pystac.Asset(hrefs[assets.bands[0]], media_type=COG))  # not read
    store = S3Store(s3.new_bucket("clips"), "archive", s3=s3.config)

    clip = clip_scene(scene_from_item(item, f"stac:{asset_map}", assets), aoi, grid, store,
                      s3=s3.config)

    np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)), scene.window(grid))
    usable = scene.usable_window(grid)
    np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.mask_key))[0], usable)
    stored = pystac.Item.from_dict(json.loads(store.get_bytes(item_key(clip))))
    JsonSchemaSTACValidator().validate_core(stored.to_dict(), pystac.STACObjectType.ITEM, "1.1.0")
    assert [b["name"] for b in stored.assets["image"].extra_fields["eo:bands"]] == [
        "blue", "green", "red", "nir"]
    assert stored.properties["proj:shape"] == [grid.height, grid.width]
    assert 0.0 < clip.valid_fraction < 1.0
