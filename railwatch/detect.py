"""`railwatch detect`: one image file (and optionally a reference) in, the spec's JSON out.

Files are read onto the AOI's grid at the image's own resolution with the same `read_on_grid`
the pipeline's clipping uses, then handed to the core's `detect_image`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import calculate_default_transform

from railwatch.adapters.raster import gdal_env, polygon_pixels, read_on_grid
from railwatch.aoi import AOI, load_aoi
from railwatch.core import DetectorParams, SceneMeasurement, detect_image
from railwatch.errors import SceneError
from railwatch.grid import AOIGrid, aoi_grid, utm_crs_for
from railwatch.measure import track_lines


def native_gsd_m(path: str, aoi: AOI) -> float:
    """The image's pixel size in metres, measured in the AOI's UTM zone."""
    centroid = aoi.geometry.centroid
    try:
        with gdal_env(), rasterio.open(path) as src:
            if src.crs is None:
                raise SceneError(f"{path}: the raster has no georeferencing (CRS)")
            transform, _, _ = calculate_default_transform(
                src.crs, utm_crs_for(centroid.x, centroid.y), src.width, src.height, *src.bounds
            )
    except RasterioError as exc:
        raise SceneError(f"{path}: cannot read the raster ({exc})") from exc
    return round(float(transform.a), 3)


def read_image(path: str, grid: AOIGrid, what: str) -> tuple[np.ndarray, np.ndarray]:
    """An image on the grid as float32 reflectance × 10000 with its has-data mask."""
    with rasterio.open(path) as src:
        count, dtype = src.count, src.dtypes[0]
    if count not in (3, 4):
        raise SceneError(
            f"{path}: the {what} has {count} band(s); expected 4 (blue, green, red, nir) "
            "or 3 (blue, green, red)"
        )
    data, has_data = read_on_grid(path, grid, None, Resampling.bilinear)
    image = data.astype(np.float32)
    if np.issubdtype(np.dtype(dtype), np.floating):
        finite = np.isfinite(image).all(axis=0)
        has_data &= finite
        if has_data.any() and float(np.nanmax(image[:, has_data])) <= 2.0:
            image *= 10000.0  # float reflectance → the ×10000 scale of integer products
    return image, has_data


def read_mask(path: str, grid: AOIGrid) -> np.ndarray:
    """First band == 1 where clear (Planet UDM2 `clear` convention)."""
    data, has_data = read_on_grid(path, grid, [1], Resampling.nearest)
    clear: np.ndarray = (data[0] == 1) & has_data
    return clear


def detect_files(aoi_path: Path, image_path: str, reference_path: str | None = None,
                 mask_path: str | None = None, reference_mask_path: str | None = None,
                 params: DetectorParams | None = None, sun_azimuth_deg: float | None = None,
                 sun_elevation_deg: float | None = None) -> dict[str, Any]:
    aoi = load_aoi(aoi_path)
    gsd = native_gsd_m(image_path, aoi)
    grid = aoi_grid(aoi, gsd_m=gsd, buffer_m=max(60.0, 20 * gsd))
    inside = polygon_pixels(grid, aoi.geometry)
    with gdal_env():
        image, valid = read_image(image_path, grid, "image")
        if not valid[inside].any():
            raise SceneError(f"{image_path}: the image does not overlap AOI {aoi.id}")
        if mask_path:
            valid &= read_mask(mask_path, grid)
        reference = reference_valid = None
        if reference_path:
            reference, reference_valid = read_image(reference_path, grid, "reference")
            if reference.shape[0] != image.shape[0]:
                raise SceneError(
                    f"{reference_path}: the reference has {reference.shape[0]} bands, "
                    f"the image {image.shape[0]}; give both the same bands"
                )
            if reference_mask_path:
                reference_valid &= read_mask(reference_mask_path, grid)
    result = detect_image(image, valid, track_lines(aoi, grid), gsd, aoi.car_pitch_m,
                          reference, reference_valid, params=params, sun_azimuth_deg=sun_azimuth_deg,
                          sun_elevation_deg=sun_elevation_deg,
                          track_lengths_m={t.id: t.length_m for t in aoi.tracks})
    return detection_json(aoi, gsd, result)


def detection_json(aoi: AOI, gsd_m: float, m: SceneMeasurement) -> dict[str, Any]:
    """The JSON object of spec/detect-cli.md."""

    def counts(x: Any) -> dict[str, Any]:
        return {"occupied_m": round(x.occupied_m, 1), "cars": x.cars, "cars_low": x.cars_low,
                "cars_high": x.cars_high, "valid_fraction": round(x.valid_fraction, 3)}

    return {
        "aoi": aoi.id,
        "gsd_m": gsd_m,
        "tracks": [{"id": t.track_id, "length_m": round(t.length_m, 1), **counts(t)}
                   for t in m.tracks],
        "total": counts(m),
        "quality": {"shift_m": [round(m.shift_m[0], 2), round(m.shift_m[1], 2)],
                    "flags": list(m.flags)},
    }
