"""The core on the built-in simulator's Tumangang scenes (skipped if the simulator is absent).

Runs the pipeline's path: clip onto the AOI grid, composite of clear clips as reference,
register each scene, profile, measure with the sun's azimuth. Checks the analysts' two key
dates: the empty yard on 2023-09-14 and the two long lines on 2023-09-22.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

simulate = pytest.importorskip("railwatch.simulate")

from rasterio.enums import Resampling  # noqa: E402

from railwatch.adapters.raster import read_on_grid, usable_mask  # noqa: E402
from railwatch.aoi import load_aoi  # noqa: E402
from railwatch.core import (  # noqa: E402
    DetectorParams,
    TrackLine,
    align_to_reference,
    build_composite,
    extract_profiles,
    measure_scene,
)
from railwatch.grid import aoi_grid  # noqa: E402

AOI_FILE = Path(__file__).resolve().parents[2] / "aois" / "tumangang.geojson"


def _clip(scene: Any, grid: Any, window: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """The scene on the AOI grid (as the pipeline clips it), cut to the yard to save time."""
    image, has = read_on_grid(str(scene.image_path), grid, None, Resampling.bilinear)
    mask, mask_has = read_on_grid(str(scene.mask_path), grid, None, Resampling.nearest)
    valid = usable_mask(mask, "udm2") & mask_has & has & np.all(image > 0, axis=0)
    return image.astype(np.float32)[:, window[0], window[1]], valid[window]


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    aoi = load_aoi(AOI_FILE)
    out = tmp_path_factory.mktemp("sim")
    days = ((dt.date(2023, 9, 14), dt.date(2023, 9, 22)),)
    return [
        scene
        for start, end in days
        for scene in simulate.publish_season(aoi, out, start, end, workers=1, scene_size_m=(3000.0, 3000.0))
    ]


def test_key_dates_on_simulated_tumangang(season: list[Any]) -> None:
    aoi = load_aoi(AOI_FILE)
    grid = aoi_grid(aoi)
    parts = {t.id: grid.to_pixels(t.geometry) for t in aoi.tracks}
    xy = np.vstack([q for ps in parts.values() for q in ps])
    c0, r0 = (np.floor(xy.min(axis=0)) - 40).astype(int)
    c1, r1 = (np.ceil(xy.max(axis=0)) + 40).astype(int)
    window = (slice(max(r0, 0), r1), slice(max(c0, 0), c1))
    offset = np.array([window[1].start, window[0].start], dtype=float)
    tracks = [TrackLine(k, tuple(q - offset for q in ps)) for k, ps in parts.items()]
    clips = {s.day or s.acquired.date(): (s, *_clip(s, grid, window)) for s in season}
    # the reference: the clear clips of 09-15..09-21 (quiet trains stand on each of them),
    # never the measured day itself
    clear = [c for day, c in clips.items()
             if c[2].mean() > 0.9 and dt.date(2023, 9, 14) < day < dt.date(2023, 9, 22)]
    assert len(clear) >= 4
    composite, comp_valid, _ = build_composite(
        [c[1] for c in clear], [c[2] for c in clear], params=DetectorParams(composite_iterations=2)
    )
    background = extract_profiles(composite, comp_valid, tracks, grid.gsd_m)
    for day, truth_cars in ((dt.date(2023, 9, 14), 0), (dt.date(2023, 9, 22), 34)):
        scene, image, valid = clips[day]
        assert scene.truth["total"]["cars"] == truth_cars  # the simulator's story
        sun = float(json.loads(scene.item_path.read_text())["properties"]["view:sun_azimuth"])
        aligned, aligned_valid, al = align_to_reference(image, valid, composite, comp_valid)
        m = measure_scene(extract_profiles(aligned, aligned_valid, tracks, grid.gsd_m), background,
                          grid.gsd_m, aoi.car_pitch_m, al, sun_azimuth_deg=sun)
        assert m.cars_low <= truth_cars <= m.cars_high, (day, m.cars, m.cars_low, m.cars_high)
        assert abs(m.cars - truth_cars) <= max(2, 0.12 * truth_cars), (day, m.cars)
        # the applied shift undoes the scene's misregistration, up to the reference's own offset
        true_shift = scene.truth["shift_m"]  # content displaced (east, north)
        applied = (m.shift_m[0], -m.shift_m[1])  # (east, north)
        assert np.hypot(applied[0] + true_shift[0], applied[1] + true_shift[1]) < 4.0
