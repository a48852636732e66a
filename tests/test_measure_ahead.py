"""Measuring a clip as it is made: when an AOI's reference can no longer change, the clip task
measures each clip from the pixels it just stored. The measurement must be the one the separate
step makes from the stored clip, and one against a reference since replaced is made again.

On the simulator's scenes of the demo AOI (tests/cli_runs.py `simulated`), in a local store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.common import still_current
from railwatch.adapters.catalogs import open_catalog
from railwatch.adapters.store import LocalStore
from railwatch.aoi import AOI, load_aoi
from railwatch.grid import aoi_grid
from railwatch.ingest import clip_scene, clip_scene_pixels
from railwatch.measure import (
    REFERENCE_SCENES,
    clip_arrays,
    ensure_reference,
    load_reference,
    measure_clip,
    measure_pixels,
    reference_digest,
    reference_is_final,
    reference_keys,
    reference_manifest_key,
)
from railwatch.models import ClipRef, SceneRef
from tasks.ingest import current_reference
from tests.cli_runs import REPO, SIM_END, SIM_START, simulated

__all__ = ["simulated"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def demo() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


def day(text: str, days: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(days=days)


def scenes_of(simulated: Path, aoi: AOI) -> list[SceneRef]:
    found = open_catalog("simulator", simulated).search(aoi, day(SIM_START), day(SIM_END, 1))
    return sorted(found.scenes, key=lambda s: s.acquired)


def test_a_clip_measured_as_it_is_made_is_measured_as_from_the_store(
        simulated: Path, demo: AOI, tmp_path: Path) -> None:
    grid = aoi_grid(demo, gsd_m=3.0, buffer_m=100.0)
    store = LocalStore(tmp_path / "store")
    scenes = scenes_of(simulated, demo)
    first = [clip_scene(s, demo, grid, store) for s in scenes[:-1]]
    assert ensure_reference(demo, grid, first, store) == "built"
    reference = load_reference(demo, grid, store)
    assert reference.digest == reference_digest(store, demo.id) is not None

    clip, image, valid = clip_scene_pixels(scenes[-1], demo, grid, store)
    ahead = measure_pixels(clip, *clip_arrays(image, valid), grid, store, reference)
    ahead_bytes = store.get_bytes(ahead.profile_key)
    stored = measure_clip(clip, demo, grid, store, reference)  # the separate step, from the store
    assert ahead.profile_key == stored.profile_key and ahead.profile_key.startswith(demo.id)
    assert store.get_bytes(stored.profile_key) == ahead_bytes
    assert ahead.model_copy(update={"seconds": 0}) == stored.model_copy(update={"seconds": 0})
    assert ahead.reference_id == reference.digest


def clip_at(when: datetime, valid: float, scene_id: str) -> ClipRef:
    scene = SceneRef(source="simulator", scene_id=scene_id, acquired=when, image_href="/x.tif",
                     image_bands=(1, 2, 3, 4))
    return ClipRef(aoi_id="yard", scene=scene, image_key="i", mask_key="m", valid_fraction=valid)


def test_a_reference_is_final_once_full_and_older_than_every_scene_to_clip() -> None:
    t0 = day("2023-09-01")
    clear = [clip_at(t0 + timedelta(days=i), 1.0, f"c{i}") for i in range(REFERENCE_SCENES)]
    cloudy = clip_at(t0 + timedelta(days=1, hours=1), 0.3, "cloudy")
    later = [clip_at(t0 + timedelta(days=10), 1.0, "later").scene]
    assert reference_is_final([*clear, cloudy], later)
    assert not reference_is_final([*clear[:-1], cloudy], later)  # not full: a new clear scene joins
    earlier = clip_at(t0 + timedelta(days=2, hours=1), 1.0, "late-arrival").scene
    assert not reference_is_final(clear, [*later, earlier])  # it would take the last one's place
    assert not reference_is_final(clear, [clear[-1].scene])  # the same time: the order decides


def test_measurements_against_a_replaced_or_missing_reference_are_made_again(
        simulated: Path, demo: AOI, tmp_path: Path) -> None:
    grid = aoi_grid(demo, gsd_m=3.0, buffer_m=100.0)
    store = LocalStore(tmp_path / "store")
    scenes = scenes_of(simulated, demo)
    assert current_reference(demo, grid, store) == (None, None)  # none yet: clips are only clipped
    clips = [clip_scene(s, demo, grid, store) for s in scenes[:REFERENCE_SCENES]]
    ensure_reference(demo, grid, clips, store)
    reference, problem = current_reference(demo, grid, store)
    assert reference is not None and problem is None
    assert reference.digest == reference_digest(store, demo.id)
    clip, image, valid = clip_scene_pixels(scenes[-1], demo, grid, store)
    ahead = measure_pixels(clip, *clip_arrays(image, valid), grid, store, reference)

    assert still_current({demo.id: [ahead]}, store) == [(demo.id, ahead)]
    store.put_bytes(reference_manifest_key(demo.id), b'["another set of scenes"]')  # replaced since
    assert still_current({demo.id: [ahead]}, store) == []
    image_key, _ = reference_keys(demo.id)
    store.put_bytes(image_key, b"not a GeoTIFF")
    unreadable, why = current_reference(demo, grid, store)
    assert unreadable is None and why is not None
    assert why.startswith(f"the reference cannot be read ({image_key}: the stored raster cannot be decoded")
    (tmp_path / "store" / reference_manifest_key(demo.id)).unlink()
    assert still_current({demo.id: [ahead]}, store) == []
    assert current_reference(demo, grid, store) == (None, None)
