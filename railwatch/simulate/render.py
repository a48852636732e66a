"""Render one acquisition to arrays: pure numpy/scipy, no files (publishing is `publish.py`).

Order of the physics: ground (fields, roads, buildings, yard apron) at the GSD → tracks, cars
and shadows at GSD/3 averaged back → optical blur → cloud shadows, clouds, haze, gain, noise →
uint16. The content is drawn displaced by the date's misregistration while the grid stays
nominal, as with a real geolocation error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from railwatch.aoi import AOI
from railwatch.simulate.raster import blur3, grid_axes
from railwatch.simulate.scene import SceneSpec, yard_of
from railwatch.simulate.season import DayPlan
from railwatch.simulate.sky import clouds, footprint_mask, observe, udm2
from railwatch.simulate.terrain import draw_apron, draw_buildings, draw_roads, ground, world_of
from railwatch.simulate.yard import render_yard, shadow_vector, track_window

PSF_WEIGHT = 0.14  # neighbour weight of the 3-tap optical blur (σ ≈ 0.55 px)
YARD_MARGIN_M = 15.0


@dataclass(frozen=True)
class Rendered:
    """The delivered image (4, H, W) uint16 and its UDM2-like mask (8, H, W) uint8."""

    image: NDArray[np.uint16]
    mask: NDArray[np.uint8]

    @property
    def cloud_percent(self) -> float:
        """Cloud over the valid part of the scene, in percent (STAC eo:cloud_cover)."""
        valid = self.mask[7] != 1
        return float(100.0 * self.mask[5][valid].mean()) if valid.any() else 0.0

    @property
    def clear_percent(self) -> float:
        valid = self.mask[7] != 1
        return float(100.0 * self.mask[0][valid].mean()) if valid.any() else 0.0


def render_scene(aoi: AOI, plan: DayPlan, spec: SceneSpec) -> Rendered:
    """All pixels of one scene of `aoi` on `plan.day`, drawn as `spec` says."""
    yard = yard_of(aoi)
    world = world_of(yard, aoi.id, spec.seed)
    gsd = spec.gsd_m
    xs_n, ys_n = grid_axes(spec.transform.c, spec.transform.f, gsd, spec.width, spec.height)
    dx, dy = spec.shift_m
    xs, ys = xs_n - dx, ys_n - dy  # world position shown by each pixel
    shadow = shadow_vector(spec.sun_azimuth, spec.sun_elevation)

    refl = ground(world, xs, ys, plan.day)
    draw_roads(refl, world, xs, ys)
    draw_buildings(refl, world, xs, ys, shadow)
    draw_apron(refl, yard, xs, ys, world)
    window = track_window(yard, xs, ys, YARD_MARGIN_M)
    if window is not None:
        rows, cols = window
        refl[:, rows, cols] = render_yard(
            refl[:, rows, cols], xs[cols], ys[rows], yard, plan, shadow, world.key
        )
    refl = blur3(refl, PSF_WEIGHT)

    valid = footprint_mask(spec, xs_n, ys_n)
    sky = clouds(spec, xs_n, ys_n)
    return Rendered(observe(refl, spec, sky, valid, xs_n, ys_n), udm2(sky, valid))
