"""Clipping a scene onto its AOI grid: exact pixels, the mask, deterministic keys, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rio_cogeo.cogeo import cog_validate

from railwatch.adapters import raster
from railwatch.adapters.raster import (
    OVERVIEW_MIN_PX,
    CogCompression,
    decode_raster,
    encode_cog,
    grid_offset,
    read_on_grid,
    read_warped,
)
from railwatch.adapters.store import LocalStore
from railwatch.aoi import load_aoi
from railwatch.errors import SceneError
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.ingest import clip_scene
from railwatch.models import SceneRef
from tests.faultkit import environment

REPO = Path(__file__).resolve().parents[1]
MakeTiff = Callable[..., Path]


@pytest.fixture
def make_tiff(tmp_path: Path) -> MakeTiff:
    """Write a GeoTIFF with given data, transform and CRS."""

    def make(name: str, data: np.ndarray, transform: Affine, crs: str = "EPSG:32652",
             nodata: float | None = 0) -> Path:
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                           count=data.shape[0], dtype=data.dtype.name, crs=crs,
                           transform=transform, nodata=nodata, tiled=True, blockxsize=256,
                           blockysize=256) as dst:
            dst.write(data)
        return path

    return make


@pytest.fixture
def grid() -> AOIGrid:
    return aoi_grid(load_aoi(REPO / "aois" / "tumangang.geojson"))


def scene_ref(image: Path, mask: Path | None = None, bands: tuple[int, ...] = (1, 2, 3, 4)) -> SceneRef:
    return SceneRef(source="simulator", scene_id="20230905_013412_43_24a3",
                    acquired=datetime(2023, 9, 5, 1, 34, tzinfo=UTC), image_href=str(image),
                    image_bands=bands, mask_href=str(mask) if mask else None,
                    mask_kind="udm2" if mask else None)


def test_aligned_scene_clips_pixel_exact_with_mask(make_tiff: MakeTiff, grid: AOIGrid,
                                                   tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pad = 40  # the scene is larger than the grid on every side, offset by whole pixels
    h, w = grid.height + 2 * pad, grid.width + 2 * pad
    data = rng.integers(100, 5000, size=(4, h, w)).astype("uint16")
    origin = grid.transform * (-pad, -pad)
    transform = Affine(3.0, 0, origin[0], 0, -3.0, origin[1])
    udm2 = np.zeros((8, h, w), dtype="uint8")
    udm2[0] = 1
    udm2[0, pad + 10: pad + 60, pad + 100: pad + 200] = 0  # a cloud
    image_path = make_tiff("scene.tif", data, transform)
    mask_path = make_tiff("udm2.tif", udm2, transform, nodata=None)
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    store = LocalStore(tmp_path / "store")

    clip = clip_scene(scene_ref(image_path, mask_path), aoi, grid, store)

    assert clip.image_key == "tumangang/2023/09/05/simulator-20230905_013412_43_24a3/image.tif"
    image = decode_raster(store.get_bytes(clip.image_key))
    mask = decode_raster(store.get_bytes(clip.mask_key))[0]
    np.testing.assert_array_equal(image, data[:, pad: pad + grid.height, pad: pad + grid.width])
    assert mask[10:60, 100:200].max() == 0 and mask.sum() == mask.size - 50 * 100
    assert 0.9 < clip.valid_fraction < 1.0
    assert cog_validate(store.gdal_path(clip.image_key), quiet=True)[0]
    with rasterio.open(store.gdal_path(clip.image_key)) as src:
        assert src.crs.to_string() == grid.crs and src.transform == grid.transform

    before = (tmp_path / "store" / clip.image_key).stat().st_mtime_ns
    clip_scene(scene_ref(image_path, mask_path), aoi, grid, store)  # rerun: nothing rewritten
    assert (tmp_path / "store" / clip.image_key).stat().st_mtime_ns == before


@pytest.mark.parametrize("compression", ["deflate", "zstd"])
def test_clips_are_written_with_the_configured_codec(make_tiff: MakeTiff, grid: AOIGrid, tmp_path: Path,
                                                    compression: str) -> None:
    """RAILWATCH_CLIP_COMPRESSION picks the codec of image and mask (deflate for old readers)."""
    data = np.random.default_rng(2).integers(100, 5000, (4, grid.height, grid.width)).astype("uint16")
    store = LocalStore(tmp_path / "store")
    with environment({"RAILWATCH_CLIP_COMPRESSION": compression}):
        clip = clip_scene(scene_ref(make_tiff("scene.tif", data, grid.transform)),
                          load_aoi(REPO / "aois" / "tumangang.geojson"), grid, store)
    for key in (clip.image_key, clip.mask_key):
        with rasterio.open(store.gdal_path(key)) as src:
            assert src.compression.value == compression.upper()
    np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)), data)


@pytest.mark.parametrize("nodata", [0, None])
@pytest.mark.parametrize("shift_px", [(40, 40), (-300, 25), (5, -150)])
def test_a_grid_of_the_scenes_own_pixels_is_read_without_a_warp_and_the_same_as_one(
        make_tiff: MakeTiff, grid: AOIGrid, shift_px: tuple[int, int], nodata: int | None) -> None:
    """The window read gives exactly what GDAL's warper gives, where the scene covers the grid
    and where it covers only part of it (the rest: no data)."""
    rng = np.random.default_rng(7)
    data = rng.integers(1, 4000, (4, grid.height, grid.width)).astype("uint16")
    data[:, 30:40, 50:90] = 0  # nodata inside the scene, when 0 is nodata
    path = make_tiff("own.tif", data, grid.transform @ Affine.translation(*shift_px), nodata=nodata)
    with rasterio.open(path) as src:
        assert grid_offset(src, grid) == (-shift_px[0], -shift_px[1])
        warped, warped_has = read_warped(src, [1, 2, 3, 4], grid, Resampling.bilinear)
    fast, fast_has = read_on_grid(str(path), grid)
    np.testing.assert_array_equal(fast, warped)
    np.testing.assert_array_equal(fast_has, warped_has)
    assert 0 < fast_has.mean() < 1


@pytest.mark.parametrize("resampling", [Resampling.bilinear, Resampling.nearest])
@pytest.mark.parametrize("nodata", [0, None])
@pytest.mark.parametrize("shift_px", [(10.3, 10.6), (4.25, 13.75), (10.5, 10.0)])
def test_a_scene_moved_by_a_fraction_of_a_pixel_reads_as_the_warper_does(
        make_tiff: MakeTiff, grid: AOIGrid, shift_px: tuple[float, float], nodata: int | None,
        resampling: Resampling, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same CRS and pixel size, corners off by a fraction: the sub-pixel window read gives the
    warper's values (GDAL rounds the same sums: ±1) and its data mask, less only the grid
    pixels whose kernel touches a hole in the scene."""
    rng = np.random.default_rng(11)
    data = rng.integers(1, 4000, (4, grid.height + 20, grid.width + 20)).astype("uint16")
    data[:, 30:40, 50:90] = 0  # a hole (nodata when 0 is nodata)
    path = make_tiff("moved.tif", data, grid.transform @ Affine.translation(-shift_px[0], -shift_px[1]),
                     nodata=nodata)
    with rasterio.open(path) as src:
        assert grid_offset(src, grid) is None
        warped, warped_has = read_warped(src, [1, 2, 3, 4], grid, resampling)
    monkeypatch.setattr(raster, "read_warped", no_warp)
    fast, fast_has = read_on_grid(str(path), grid, None, resampling)
    assert fast.dtype == warped.dtype and fast.shape == warped.shape
    both = warped_has & fast_has
    assert np.abs(fast.astype(int) - warped.astype(int))[:, both].max() <= 1
    assert (fast_has <= warped_has).all()
    rim = 2 * (10 + 40) + 4  # the pixels around the 10 × 40 hole
    assert (warped_has & ~fast_has).sum() <= (rim if nodata == 0 and resampling == Resampling.bilinear else 0)
    assert (fast[:, ~fast_has] == 0).all()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_the_compiled_interpolation_gives_the_same_values_as_numpy(dtype: str) -> None:
    """8/16-bit scenes are interpolated by a compiled kernel: the same float32 sums, rounding
    and clipping as numpy's, so a clip keeps its bytes (the store skips identical objects)."""
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    for fx, fy in [(0.3, 0.7), (0.5, 0.0), (0.0, 0.5), (0.999, 0.001), (0.1, 0.1)]:
        pixels = rng.integers(info.min, int(info.max) + 1, (3, 33, 41)).astype(dtype)
        values = pixels.astype(np.float32)
        rows = values[:, :32] * (1 - fy) + values[:, 1:] * fy
        expected = np.clip(np.rint(rows[:, :, :40] * (1 - fx) + rows[:, :, 1:] * fx), info.min, info.max)
        np.testing.assert_array_equal(raster._bilinear(pixels, fx, fy, 32, 40), expected.astype(dtype))


def no_warp(*args: object) -> None:
    raise AssertionError("the warper was used")


def test_a_grid_past_the_edge_of_a_moved_scene_is_warped(make_tiff: MakeTiff, grid: AOIGrid) -> None:
    data = np.full((4, grid.height, grid.width), 1000, dtype="uint16")
    path = make_tiff("edge.tif", data, grid.transform @ Affine.translation(30.2, 0.4))
    image, has_data = read_on_grid(str(path), grid)
    assert 0.9 < has_data.mean() < 1 and (image[:, has_data] == 1000).all()
    assert not has_data[:, :30].any()


def test_a_scene_off_the_grids_pixels_is_warped(make_tiff: MakeTiff, grid: AOIGrid) -> None:
    data = np.full((4, 64, 64), 1000, dtype="uint16")
    for transform, crs in ((grid.transform @ Affine.translation(0.5, 0), "EPSG:32652"),
                           (grid.transform @ Affine.scale(2), "EPSG:32652"),
                           (grid.transform, "EPSG:32651")):
        with rasterio.open(make_tiff("off.tif", data, transform, crs=crs)) as src:
            assert grid_offset(src, grid) is None


def test_scene_in_another_crs_is_reprojected_onto_the_grid(make_tiff: MakeTiff, grid: AOIGrid,
                                                           tmp_path: Path) -> None:
    data = np.full((3, 400, 500), 1234, dtype="uint16")  # a 3-band lon/lat scene over the yard
    path = make_tiff("ll.tif", data, Affine(0.0001, 0, 130.58, 0, -0.0001, 42.435), crs="EPSG:4326")
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    clip = clip_scene(scene_ref(path, bands=(1, 2, 3)), aoi, grid, LocalStore(tmp_path / "s"))
    image = decode_raster(LocalStore(tmp_path / "s").get_bytes(clip.image_key))
    assert image.shape == (3, grid.height, grid.width)
    assert clip.valid_fraction == 1.0 and (image == 1234).all()


def test_bad_scenes_fail_clearly(make_tiff: MakeTiff, grid: AOIGrid, tmp_path: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    store = LocalStore(tmp_path / "store")
    far = make_tiff("far.tif", np.ones((4, 50, 50), dtype="uint16"),
                    Affine(3.0, 0, 500000, 0, -3.0, 4600000))
    with pytest.raises(SceneError, match="does not overlap AOI tumangang"):
        clip_scene(scene_ref(far), aoi, grid, store)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(far.read_bytes()[:300])
    with pytest.raises(SceneError, match="truncated or not a georeferenced image"):
        clip_scene(scene_ref(corrupt), aoi, grid, store)
    rng = np.random.default_rng(2)
    big = make_tiff("big.tif", rng.integers(1, 5000, (4, 1024, 1024)).astype("uint16"),
                    grid.transform * Affine.translation(-100, -100))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    with pytest.raises(SceneError, match="cannot read the raster"):
        clip_scene(scene_ref(cut), aoi, grid, store)
    (tmp_path / "text.tif").write_text("not a tiff")
    with pytest.raises(SceneError, match="cannot read the raster"):
        clip_scene(scene_ref(tmp_path / "text.tif"), aoi, grid, store)
    two_bands = make_tiff("two.tif", np.ones((2, 50, 50), dtype="uint16"), grid.transform)
    with pytest.raises(SceneError, match="has 2 band"):
        clip_scene(scene_ref(two_bands), aoi, grid, store)
    assert not list(store.list())  # nothing half-written


@pytest.mark.parametrize(("side", "compression"), [(707, "zstd"), (1300, "zstd"), (707, "deflate")])
def test_clip_cogs_are_valid_byte_stable_and_have_overviews_only_when_large(
        side: int, compression: CogCompression, tmp_path: Path) -> None:
    grid = AOIGrid("EPSG:32652", Affine(3.0, 0, 626439.0, 0, -3.0, 4700562.0), side, side)
    data = np.random.default_rng(side).integers(1, 4096, (4, side, side), dtype="uint16")
    bands = ["blue", "green", "red", "nir"]

    encoded = encode_cog(data, grid, nodata=0, descriptions=bands, compression=compression)

    assert encode_cog(data, grid, nodata=0, descriptions=bands, compression=compression) == encoded
    path = tmp_path / "clip.tif"
    path.write_bytes(encoded)
    valid, errors, _ = cog_validate(str(path), quiet=True)
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.block_shapes[0] == (256, 256) and src.compression.value == compression.upper()
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        assert src.descriptions == ("blue", "green", "red", "nir") and src.nodata == 0
        assert src.overviews(1) == ([] if side <= OVERVIEW_MIN_PX else [2, 4, 8])  # down to < 1 tile
        np.testing.assert_array_equal(src.read(), data)
