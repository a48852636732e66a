"""Quicklooks: the clip with the occupied stretches drawn on their tracks, clouds washed out,
and track labels that do not overlap."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from railwatch.adapters.counts import SceneCountRow, TrackCountRow
from railwatch.adapters.raster import encode_cog
from railwatch.adapters.store import LocalStore
from railwatch.quicklook import (
    LABEL_GAP_PX,
    OCCUPIED_RGB,
    clip_grid,
    label_lifts,
    natural_colour,
    render_quicklook,
)
from tests.alert_series import demo_aoi


def test_labels_of_sidings_starting_side_by_side_are_spread_apart() -> None:
    pt_per_px = 2.0
    starts = {"t1": np.array([100.0, 200.0]), "t2": np.array([100.5, 201.8]),
              "t3": np.array([101.0, 203.6]), "main": np.array([10.0, 260.0])}
    lifts = label_lifts(starts, pt_per_px)
    shown = {k: -starts[k][1] * pt_per_px + lifts[k] for k in starts}
    sidings = sorted(shown[k] for k in ("t1", "t2", "t3"))
    assert min(np.diff(sidings)) >= LABEL_GAP_PX - 1e-9
    assert lifts["t1"] == 0.0  # the top one stays at its track
    assert lifts["main"] == 0.0  # a label far from the others is not moved


def test_labels_already_apart_are_not_moved() -> None:
    starts = {"a": np.array([50.0, 100.0]), "b": np.array([50.0, 130.0])}
    assert label_lifts(starts, 1.0) == {"a": 0.0, "b": 0.0}


def test_clouds_are_washed_out_and_the_stretch_comes_from_clear_pixels() -> None:
    image = np.full((4, 20, 20), 1000.0, dtype=np.float32)
    image[:, :, 10:] = 2000.0
    valid = np.ones((20, 20), dtype=bool)
    valid[:5] = False
    rgb = natural_colour(image, valid)
    assert rgb[10, 2].max() < 0.05 and rgb[10, 15].min() > 0.95  # stretched from dark to bright
    assert np.all(rgb[2, 2] > rgb[10, 2] + 0.3)  # the same ground under a cloud: lighter
    window = natural_colour(image, valid, (slice(8, 12), slice(0, 20)))
    assert np.array_equal(window, rgb[8:12])


def red_pixels(png: bytes) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(np.sum(np.all(np.abs(rgb - OCCUPIED_RGB) <= 10, axis=2)))


def test_a_quicklook_draws_the_occupied_stretches_on_their_tracks(tmp_path: Path) -> None:
    aoi = demo_aoi()
    grid = clip_grid(aoi, 60.0)
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(3)
    pixels = rng.integers(900, 1100, (4, grid.height, grid.width)).astype(np.uint16)
    mask = np.ones((1, grid.height, grid.width), dtype=np.uint8)
    store.put_bytes("a/image.tif", encode_cog(pixels, grid, nodata=0))
    store.put_bytes("a/mask.tif", encode_cog(mask, grid))
    row = SceneCountRow(aoi_id=aoi.id, source="simulator", scene_id="s1", detector_version="t",
                        acquired=datetime(2023, 10, 5, 2, 25, tzinfo=UTC), occupied_m=0.0, cars=73,
                        cars_low=44, cars_high=96, valid_fraction=1.0, shift_dx_m=0.0,
                        shift_dy_m=0.0, image_key="a/image.tif", mask_key="a/mask.tif")

    def render(segments: list[list[float]]) -> bytes:
        return render_quicklook(aoi, grid, row, [TrackCountRow(track_id="t3", segments=segments)], store)

    legend = red_pixels(render([]))  # the legend's red line
    short, long = red_pixels(render([[100.0, 300.0]])) - legend, red_pixels(render([[100.0, 500.0]])) - legend
    assert short > 500, short
    assert 1.7 < long / short < 2.3, (short, long)  # twice the metres, twice the red
    png = render([[100.0, 300.0]])
    assert png == render([[100.0, 300.0]])  # the same picture, the same bytes
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size[0] > 1000
