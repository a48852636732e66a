"""Realistic clips for the benchmarks: the built-in simulator's Tumangang season on a square grid.

The simulator publishes PlanetScope-like COGs (fields, ballast, cars and their shadows, clouds,
haze, misregistration); they are read onto a `size` × `size` px grid centred on the yard with the
pipeline's own `read_on_grid`, as the pipeline clips them. Scenes are cached in a folder (the
simulator skips scenes already published with the same parameters).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.enums import Resampling

from railwatch.adapters.raster import read_on_grid, usable_mask
from railwatch.aoi import AOI, load_aoi
from railwatch.core import TrackLine
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.measure import track_lines
from railwatch.simulate import publish_season

REPO = Path(__file__).resolve().parents[1]
AOI_FILE = REPO / "aois" / "tumangang.geojson"
FIRST_DAY = dt.date(2023, 9, 1)


@dataclass(frozen=True)
class Clip:
    """One scene on the bench grid: float32 image (4, H, W), clear mask, truth, sun."""

    day: dt.date
    image: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    pixels: npt.NDArray[np.uint16]  # as delivered, for the decode baseline
    cars: int  # on the whole yard
    cars_clear: int  # on its clear part
    sun_azimuth: float
    sun_elevation: float  # with the azimuth, where car shadows fall (as the pipeline knows it)


@dataclass(frozen=True)
class Season:
    aoi: AOI
    grid: AOIGrid
    tracks: list[TrackLine]
    clips: list[Clip]


def square_grid(aoi: AOI, size: int) -> AOIGrid:
    """A size × size px grid on the AOI grid's pixel lattice, centred on it."""
    base = aoi_grid(aoi)
    col0 = (base.width - size) // 2
    row0 = (base.height - size) // 2
    t = base.transform
    transform = Affine(t.a, 0.0, t.c + col0 * t.a, 0.0, t.e, t.f + row0 * t.e)
    return AOIGrid(crs=base.crs, transform=transform, width=size, height=size)


def load_season(days: int, size: int, cache: Path) -> Season:
    """`days` simulated scenes from FIRST_DAY on, read onto a size × size grid."""
    aoi = load_aoi(AOI_FILE)
    grid = square_grid(aoi, size)
    extent = max(3000.0, 3.0 * size * 1.4)
    scenes = publish_season(aoi, cache, FIRST_DAY, FIRST_DAY + dt.timedelta(days=days - 1),
                            scene_size_m=(extent, extent), workers=1)
    clips = []
    for s in scenes:
        data, has = read_on_grid(str(s.image_path), grid, None, Resampling.bilinear)
        mask, mask_has = read_on_grid(str(s.mask_path), grid, None, Resampling.nearest)
        valid = usable_mask(mask, "udm2") & mask_has & has & np.all(data > 0, axis=0)
        view = json.loads(s.item_path.read_text())["properties"]
        day = s.day or s.acquired.date()
        clips.append(Clip(day, data.astype(np.float32), valid, data.astype(np.uint16),
                          int(s.truth["total"]["cars"]), int(s.truth["total"]["cars_clear"]),
                          float(view["view:sun_azimuth"]), float(view["view:sun_elevation"])))
    return Season(aoi, grid, track_lines(aoi, grid), clips)
