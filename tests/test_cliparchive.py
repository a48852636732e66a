"""The clip archive as STAC: an item per clip, a collection per AOI, readable by pystac.

Offline, pystac validates the core Item/Collection JSON schemas (bundled with pystac); the
extension schemas (proj, raster, eo, file) live on stac-extensions.github.io, which this build
cannot reach, so their fields are checked by reading them back through pystac's extension classes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pystac
import rasterio
from pystac.extensions.eo import EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from railwatch.adapters.store import LocalStore
from railwatch.aoi import load_aoi
from railwatch.cliparchive import clip_item, item_bytes, write_collection
from railwatch.grid import aoi_grid
from railwatch.ingest import clip_scene
from tests.rasters import scene_ref, source_scene

REPO = Path(__file__).resolve().parents[1]


def test_clip_archive_opens_with_pystac_and_validates(tmp_path: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    grid = aoi_grid(aoi)
    store = LocalStore(tmp_path / "store")
    for day in (5, 9):
        scene = source_scene(grid, seed=day)
        (tmp_path / f"{day}.tif").write_bytes(scene.image_cog())
        (tmp_path / f"{day}-udm2.tif").write_bytes(scene.mask_cog())
        clip_scene(scene_ref(str(tmp_path / f"{day}.tif"), str(tmp_path / f"{day}-udm2.tif"), day=day,
                             scene_id=f"scene{day}"), aoi, grid, store)
    key = write_collection(aoi, grid, store)

    collection = pystac.Collection.from_file(store.gdal_path(key))
    items = list(collection.get_items())
    validator = JsonSchemaSTACValidator()
    validator.validate_core(collection.to_dict(), pystac.STACObjectType.COLLECTION, "1.1.0")
    assert [i.id for i in items] == ["simulator-scene5", "simulator-scene9"]
    interval = collection.extent.temporal.intervals[0]
    assert (interval[0].day, interval[1].day) == (5, 9)  # type: ignore[union-attr]
    for item in items:
        validator.validate_core(item.to_dict(), pystac.STACObjectType.ITEM, "1.1.0")
        proj = ProjectionExtension.ext(item)
        assert proj.code == grid.crs and proj.shape == [grid.height, grid.width]
        assert proj.transform == list(grid.transform)[:6]
        assert EOExtension.ext(item).cloud_cover == 0.1
        image = item.assets["image"]
        assert [b.common_name for b in EOExtension.ext(image).bands or []] == ["blue", "green", "red",
                                                                               "nir"]
        assert [b.data_type for b in RasterExtension.ext(image).bands or []] == ["uint16"] * 4
        path = Path(image.get_absolute_href() or "")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert FileExtension.ext(image).checksum == "1220" + digest
        assert FileExtension.ext(image).size == path.stat().st_size
        with rasterio.open(item.assets["mask"].get_absolute_href()) as src:
            assert src.transform == grid.transform
        [source] = item.get_links("derived_from")
        assert source.href.endswith(f"/items/{item.properties['railwatch:scene_id']}.json")
        west, _, _, north = item.bbox or []
        assert west < aoi.geometry.bounds[0] and north > aoi.geometry.bounds[3]


def test_the_item_of_a_clip_is_byte_identical_on_rerun(tmp_path: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    grid = aoi_grid(aoi)
    scene = source_scene(grid)
    (tmp_path / "s.tif").write_bytes(scene.image_cog())
    store = LocalStore(tmp_path / "store")
    clip = clip_scene(scene_ref(str(tmp_path / "s.tif")), aoi, grid, store)
    image, mask = store.info(clip.image_key), store.info(clip.mask_key)
    assert image is not None and mask is not None
    first = item_bytes(clip_item(clip, grid, image, mask, ["blue", "green", "red", "nir"]))
    again = item_bytes(clip_item(clip.model_copy(update={"seconds": 9.9}), grid, image, mask,
                                 ["blue", "green", "red", "nir"]))
    assert first == again == store.get_bytes(clip.image_key.replace("image.tif", "item.json"))


def test_a_signed_download_url_is_linked_without_its_token(tmp_path: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    grid = aoi_grid(aoi)
    (tmp_path / "s.tif").write_bytes(source_scene(grid).image_cog())
    store = LocalStore(tmp_path / "store")
    clip = clip_scene(scene_ref(str(tmp_path / "s.tif")), aoi, grid, store)
    signed = "https://storage.example/scene.tif?X-Amz-Signature=abc123&X-Amz-Credential=AKIAX"
    scene = clip.scene.model_copy(update={"image_href": signed, "item_href": None})
    image, mask = store.info(clip.image_key), store.info(clip.mask_key)
    assert image is not None and mask is not None
    data = item_bytes(clip_item(clip.model_copy(update={"scene": scene}), grid, image, mask, ["blue"]))
    assert b"https://storage.example/scene.tif" in data and b"abc123" not in data and b"AKIAX" not in data
