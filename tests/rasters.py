"""Synthetic source scenes for ingestion tests: COG bytes larger than an AOI grid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from affine import Affine

from railwatch.adapters.raster import encode_cog
from railwatch.grid import AOIGrid
from railwatch.models import SceneRef


@dataclass(frozen=True)
class SourceScene:
    """A 4-band uint16 scene and its UDM2-like mask, `pad` whole pixels beyond the grid."""

    image: np.ndarray
    mask: np.ndarray
    grid: AOIGrid  # the scene's own grid
    pad: int

    def image_cog(self) -> bytes:
        return encode_cog(self.image, self.grid, nodata=0)

    def mask_cog(self) -> bytes:
        return encode_cog(self.mask, self.grid)

    def window(self, aoi_grid: AOIGrid) -> np.ndarray:
        """The pixels of the scene that fall on the AOI grid."""
        p = self.pad
        return self.image[:, p: p + aoi_grid.height, p: p + aoi_grid.width]


def source_scene(aoi_grid: AOIGrid, seed: int = 1, pad: int = 40) -> SourceScene:
    rng = np.random.default_rng(seed)
    h, w = aoi_grid.height + 2 * pad, aoi_grid.width + 2 * pad
    image = rng.integers(100, 5000, size=(4, h, w)).astype("uint16")
    mask = np.zeros((1, h, w), dtype="uint8")
    mask[0] = 1
    mask[0, pad + 10: pad + 60, pad + 100: pad + 200] = 0  # a cloud
    left, top = aoi_grid.transform * (-pad, -pad)
    grid = AOIGrid(aoi_grid.crs, Affine(aoi_grid.gsd_m, 0, left, 0, -aoi_grid.gsd_m, top), w, h)
    return SourceScene(image, mask, grid, pad)


def scene_ref(image_href: str, mask_href: str | None = None, day: int = 5,
              scene_id: str = "20230905_013412_43_24a3") -> SceneRef:
    return SceneRef(source="simulator", scene_id=scene_id,
                    acquired=datetime(2023, 9, day, 1, 34, tzinfo=UTC), image_href=image_href,
                    image_bands=(1, 2, 3, 4), mask_href=mask_href,
                    mask_kind="udm2" if mask_href else None, cloud_cover=0.1,
                    item_href=f"https://catalog.example/items/{scene_id}.json")


# Sentinel-2 scene classes used below: 4 vegetation (usable), 9 cloud high probability, 0 no data.
SCL_VEGETATION, SCL_CLOUD = 4, 9


@dataclass(frozen=True)
class BandScene:
    """A Sentinel-2-like scene: one single-band uint16 COG per colour (blue, green, red, nir) at
    the grid's GSD and an SCL mask at twice that GSD (10 m bands, 20 m SCL), `pad` pixels beyond
    the AOI grid (even, so the SCL's cells line up with pairs of band pixels)."""

    bands: np.ndarray  # (4, H, W)
    scl: np.ndarray  # (1, H / 2, W / 2)
    grid: AOIGrid  # the bands' grid
    pad: int

    def band_cogs(self) -> list[bytes]:
        return [encode_cog(band[np.newaxis], self.grid, nodata=0) for band in self.bands]

    def scl_cog(self) -> bytes:
        coarse = AOIGrid(self.grid.crs, self.grid.transform @ Affine.scale(2), self.scl.shape[2],
                         self.scl.shape[1])
        return encode_cog(self.scl, coarse, nodata=0)

    def window(self, aoi_grid: AOIGrid) -> np.ndarray:
        p = self.pad
        return self.bands[:, p: p + aoi_grid.height, p: p + aoi_grid.width]

    def usable_window(self, aoi_grid: AOIGrid) -> np.ndarray:
        """The SCL on the AOI grid (each 20 m cell covers 2 × 2 pixels), usable = vegetation."""
        fine = np.repeat(np.repeat(self.scl[0], 2, axis=0), 2, axis=1)
        p = self.pad
        usable: np.ndarray = fine[p: p + aoi_grid.height, p: p + aoi_grid.width] == SCL_VEGETATION
        return usable


def band_scene(aoi_grid: AOIGrid, seed: int = 3, pad: int = 20) -> BandScene:
    rng = np.random.default_rng(seed)
    h, w = aoi_grid.height + 2 * pad, aoi_grid.width + 2 * pad
    h, w = h + h % 2, w + w % 2
    bands = rng.integers(100, 5000, size=(4, h, w)).astype("uint16")
    scl = np.full((1, h // 2, w // 2), SCL_VEGETATION, dtype="uint8")
    scl[0, 20:35, 15:60] = SCL_CLOUD
    left, top = aoi_grid.transform * (-pad, -pad)
    grid = AOIGrid(aoi_grid.crs, Affine(aoi_grid.gsd_m, 0, left, 0, -aoi_grid.gsd_m, top), w, h)
    return BandScene(bands, scl, grid, pad)
