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
    try:
        with rasterio.open(path) as src:
            count, dtype = src.count, src.dtypes[0]
    except RasterioError as exc:
        raise SceneError(f"{path}: cannot read the {what} ({exc})") from exc
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


def check_image(path: str, what: str, aoi: AOI, image: np.ndarray, has_data: np.ndarray,
                inside: np.ndarray) -> None:
    """Bad input, said plainly: no data over the AOI, or the same value everywhere there (a
    blank frame, or a nodata value the file does not declare)."""
    seen = has_data & inside
    if not seen.any():
        raise SceneError(f"{path}: the {what} has no data over AOI {aoi.id} (it does not "
                         "overlap it, or its pixels there are all nodata)")
    pixels = image[:, seen]
    if pixels.shape[1] > 1 and np.all(pixels == pixels[:, :1]):
        value = ", ".join(f"{v:g}" for v in pixels[:, 0])
        raise SceneError(f"{path}: the {what} is blank over AOI {aoi.id}: every pixel there is "
                         f"({value}); if that is its nodata value, declare it in the file")


def read_mask(path: str, grid: AOIGrid, aoi: AOI, inside: np.ndarray) -> np.ndarray:
    """First band == 1 where clear (Planet UDM2 `clear` convention); any other value than 0 and 1
    over the AOI, or no overlap, is an error (a 0/255 mask would otherwise read as all cloud)."""
    data, has_data = read_on_grid(path, grid, [1], Resampling.nearest)
    seen = has_data & inside
    if not seen.any():
        raise SceneError(f"{path}: the mask has no data over AOI {aoi.id}; give the mask of "
                         "this image")
    values = np.unique(data[0][seen])
    if not np.isin(values, (0, 1)).all():
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise SceneError(f"{path}: the mask's first band holds {shown} over AOI {aoi.id}; it "
                         "must be 1 where clear and 0 where not (Planet UDM2's clear band)")
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
        image, covered = read_image(image_path, grid, "image")
        check_image(image_path, "image", aoi, image, covered, inside)
        valid = covered.copy()
        if mask_path:
            valid &= read_mask(mask_path, grid, aoi, inside)
        reference = reference_valid = None
        if reference_path:
            reference, reference_valid = read_image(reference_path, grid, "reference")
            if reference.shape[0] != image.shape[0]:
                raise SceneError(
                    f"{reference_path}: the reference has {reference.shape[0]} bands, "
                    f"the image {image.shape[0]}; give both the same bands"
                )
            check_image(reference_path, "reference", aoi, reference, reference_valid, inside)
            if reference_mask_path:
                reference_valid &= read_mask(reference_mask_path, grid, aoi, inside)
    result = detect_image(image, valid, track_lines(aoi, grid), gsd, aoi.car_pitch_m,
                          reference, reference_valid, params=params, sun_azimuth_deg=sun_azimuth_deg,
                          sun_elevation_deg=sun_elevation_deg,
                          track_lengths_m={t.id: t.length_m for t in aoi.tracks}, coverage=covered)
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
