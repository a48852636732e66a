"""The fixed pixel grid of an AOI, so that every clip of an AOI stacks pixel on pixel.

A grid is a UTM CRS chosen from the AOI's centroid, bounds = AOI polygon plus a buffer (room
for misregistration), snapped outward to whole pixels of the source GSD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from railwatch.aoi import AOI


@dataclass(frozen=True)
class AOIGrid:
    """A north-up grid in a projected CRS."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def gsd_m(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return left, top - self.height * self.gsd_m, left + self.width * self.gsd_m, top

    def to_pixels(self, geometry_lonlat: BaseGeometry) -> list[np.ndarray]:
        """Line parts of a lon/lat geometry as (N, 2) arrays of (col, row) pixel coordinates.

        Pixel (0, 0) is the upper-left corner of the upper-left pixel, so the centre of the
        pixel at row r, column c is (c + 0.5, r + 0.5).
        """
        projected = project(geometry_lonlat, self.crs)
        parts = getattr(projected, "geoms", [projected])
        inverse = ~self.transform
        out = []
        for part in parts:
            xy = np.asarray(part.coords, dtype=np.float64)[:, :2]
            cols, rows = inverse @ (xy[:, 0], xy[:, 1])
            out.append(np.column_stack([cols, rows]))
        return out


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone CRS (EPSG code) containing a point."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def project(geometry_lonlat: BaseGeometry, crs: str) -> BaseGeometry:
    """Reproject a lon/lat geometry into `crs`."""
    to_crs = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_user_input(crs), always_xy=True)
    return shapely_transform(to_crs.transform, geometry_lonlat)


def project_to_lonlat(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """Reproject a geometry in `crs` back to lon/lat (for STAC footprints)."""
    to_lonlat = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
    return shapely_transform(to_lonlat.transform, geometry)


def aoi_grid(aoi: AOI, gsd_m: float = 3.0, buffer_m: float = 60.0) -> AOIGrid:
    """The grid every clip of `aoi` is written on."""
    centroid = aoi.geometry.centroid
    crs = aoi.prop("crs") or utm_crs_for(centroid.x, centroid.y)
    minx, miny, maxx, maxy = project(aoi.geometry, crs).bounds
    left = math.floor((minx - buffer_m) / gsd_m) * gsd_m
    bottom = math.floor((miny - buffer_m) / gsd_m) * gsd_m
    right = math.ceil((maxx + buffer_m) / gsd_m) * gsd_m
    top = math.ceil((maxy + buffer_m) / gsd_m) * gsd_m
    return AOIGrid(
        crs=crs,
        transform=Affine(gsd_m, 0.0, left, 0.0, -gsd_m, top),
        width=round((right - left) / gsd_m),
        height=round((top - bottom) / gsd_m),
    )
