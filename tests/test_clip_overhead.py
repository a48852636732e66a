"""A clip's fixed costs: a worker that writes to S3 has AWS variables set, and rasterio then
builds a boto3 session (≈ 30 ms) for every GDAL environment it enters on its own. A clip from a
file or HTTP source must build none once its AOI's polygon mask is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from railwatch.adapters.raster import decode_raster, polygon_pixels
from railwatch.adapters.store import LocalStore
from railwatch.aoi import load_aoi
from railwatch.grid import aoi_grid
from railwatch.ingest import clip_scene
from tests.rasters import scene_ref, source_scene

REPO = Path(__file__).resolve().parents[1]
AOI = load_aoi(REPO / "aois" / "tumangang.geojson")
GRID = aoi_grid(AOI)


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts boto3 sessions built while AWS credentials are in the environment."""
    for name, value in {"AWS_ACCESS_KEY_ID": "worker", "AWS_SECRET_ACCESS_KEY": "worker",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    built: list[int] = []
    original = boto3.Session.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(boto3.Session, "__init__", counting)
    return built


def test_a_clip_from_a_file_builds_no_boto3_session(tmp_path: Path, sessions: list[int]) -> None:
    scene = source_scene(GRID, pad=40)
    source = tmp_path / "image.tif"
    source.write_bytes(scene.image_cog())
    store = LocalStore(tmp_path / "clips")
    clip_scene(scene_ref(str(source), scene_id="first"), AOI, GRID, store)
    sessions.clear()
    clip = clip_scene(scene_ref(str(source), scene_id="second"), AOI, GRID, store)
    assert sessions == []
    np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)), scene.window(GRID))
    assert sessions == []


def test_the_polygon_mask_is_shared_and_read_only() -> None:
    first = polygon_pixels(GRID, AOI.geometry)
    assert polygon_pixels(GRID, AOI.geometry) is first and 0 < first.mean() < 1
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = True
