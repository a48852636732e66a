"""The built-in scene simulator: plans, pixels, masks, truth, STAC, determinism, idempotency.

Scenes are rendered smaller than the product default (2.6 × 2.5 km instead of 5 × 4.5 km) to
keep the suite fast; every other setting is the product's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from pystac.validation import validate_dict
from rio_cogeo.cogeo import cog_validate

from railwatch.aoi import AOI, load_aoi, parse_aoi
from railwatch.errors import InvalidInput
from railwatch.grid import project, utm_crs_for
from railwatch.simulate import SimulatedScene, publish_season
from railwatch.simulate.season import COUPLER_GAP_M, DayPlan, plan_day, plan_season

AOI_FILE = Path(__file__).resolve().parents[1] / "aois" / "tumangang.geojson"
SIZE = (2600.0, 2500.0)
EMPTY, LOADED, CLOUDY, OVERCAST, PEAK = "2023-09-14", "2023-09-22", "2023-09-27", "2023-09-17", "2023-10-05"
DAYS = (EMPTY, OVERCAST, LOADED, CLOUDY, PEAK)


@pytest.fixture(scope="module")
def aoi() -> AOI:
    return load_aoi(AOI_FILE)


@pytest.fixture(scope="module")
def season(aoi: AOI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, SimulatedScene]]:
    """Five telling days, published one call each (so the collection grows call by call)."""
    out = tmp_path_factory.mktemp("sim")
    scenes: dict[str, SimulatedScene] = {}
    for day in DAYS:
        d = dt.date.fromisoformat(day)
        (scene,) = publish_season(aoi, out, d, d, scene_size_m=SIZE, workers=1)
        scenes[day] = scene
    return out, scenes


def _read(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as ds:
        return ds.read(), ds


def _sample(path: Path, xy: np.ndarray) -> np.ndarray:
    """Pixel values (bands × points) at CRS points."""
    with rasterio.open(path) as ds:
        rows, cols = rasterio.transform.rowcol(ds.transform, xy[:, 0], xy[:, 1])
        data = ds.read()
    return data[:, np.asarray(rows), np.asarray(cols)].astype(np.float64)


def _track_points(aoi: AOI, track_id: str, s: np.ndarray, shift: list[float]) -> np.ndarray:
    """CRS points `s` metres along a track, where they appear in a scene shifted by `shift`."""
    track = next(t for t in aoi.tracks if t.id == track_id)
    c = aoi.geometry.centroid
    line = project(track.geometry, utm_crs_for(c.x, c.y))
    pts = np.array([line.interpolate(v * line.length / track.length_m).coords[0] for v in s])
    return pts + np.asarray(shift)


# --- the plan ---------------------------------------------------------------------------------


def test_tumangang_plan_tells_the_story(aoi: AOI) -> None:
    plans = {p.day.isoformat(): p for p in plan_season(aoi, dt.date(2023, 9, 1), dt.date(2023, 10, 10))}
    assert len(plans) == 40
    assert plans[EMPTY].n_cars == 0

    def sidings(plan: DayPlan) -> int:
        return sum(len(t.cars) for t in plan.trains if not t.track_id.startswith("main"))

    baseline = [p.n_cars for d, p in plans.items() if d < LOADED and d != EMPTY]  # whole facility
    assert min(baseline) >= 5 and max(baseline) <= 20
    assert len({sidings(p) for d, p in plans.items() if d < EMPTY}) > 3, "quiet cars should move"
    lines = sorted(t.length_m for t in plans[LOADED].trains)
    assert len(lines) == 2 and 170 <= lines[0] <= 230 and 255 <= lines[1] <= 345
    assert {t.track_id for t in plans[LOADED].trains} == {"t3", "t4"}
    peak = plans[PEAK]
    assert 70 <= peak.n_cars <= 76
    assert 950 <= sum(t.length_m for t in peak.trains) <= 1150
    assert all(sidings(p) >= 60 for d, p in plans.items() if d >= "2023-10-02")
    assert not any(t.track_id == "main" for p in plans.values() for t in p.trains), "through train"
    other = plan_season(dataclasses.replace(aoi, id="other-yard"), dt.date(2023, 9, 1), dt.date(2023, 10, 10))
    assert any(t.track_id == "main" for p in other for t in p.trains), "generic plan: no passing train"
    cloudy = [p.weather.cloud_cover for p in plans.values() if p.weather.cloud_cover >= 0.1]
    assert 0.18 <= len(cloudy) / 40 <= 0.27 and max(cloudy) >= 0.9
    assert all(plans[d].weather.cloud_cover == 0 for d in (EMPTY, LOADED, PEAK))


def test_plan_is_physical_and_range_independent(aoi: AOI) -> None:
    lengths = {t.id: t.length_m for t in aoi.tracks}
    pitches = []
    for plan in plan_season(aoi, dt.date(2023, 8, 20), dt.date(2023, 10, 20), seed=7):
        by_track: dict[str, list[tuple[float, float]]] = {}
        for train in plan.trains:
            assert train.start_m >= 0 and train.end_m <= lengths[train.track_id]
            by_track.setdefault(train.track_id, []).append((train.start_m, train.end_m))
            pitches += [c.length_m + COUPLER_GAP_M for c in train.cars]
            assert all(11.0 <= c.length_m <= 16.0 for c in train.cars)
        for spans in by_track.values():
            spans.sort()
            assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), "trains overlap"
        assert plan == plan_day(aoi, plan.day, seed=7)
    assert abs(np.mean(pitches) - aoi.car_pitch_m) < 0.7


def test_generic_aoi_gets_a_quiet_plan_and_renders(tmp_path: Path) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "aoi", "id": "elsewhere", "car_pitch_m": 16.0},
         "geometry": {"type": "Polygon", "coordinates": [[[10.0, 50.0], [10.008, 50.0], [10.008, 50.005],
                                                           [10.0, 50.005], [10.0, 50.0]]]}},
        {"type": "Feature", "properties": {"kind": "track", "id": "a"},
         "geometry": {"type": "LineString", "coordinates": [[10.001, 50.002], [10.007, 50.003]]}},
        {"type": "Feature", "properties": {"kind": "track", "id": "b"},
         "geometry": {"type": "LineString", "coordinates": [[10.001, 50.00207], [10.007, 50.00307]]}},
    ]}  # fmt: skip
    area = parse_aoi(doc)
    plans = plan_season(area, dt.date(2024, 5, 1), dt.date(2024, 5, 20), seed=1)
    counts = [p.n_cars for p in plans]
    assert max(counts) > 0 and len(set(counts)) > 1
    day = next(p.day for p in plans if p.n_cars)
    (scene,) = publish_season(area, tmp_path, day, day, seed=1, scene_size_m=(1500.0, 1400.0), workers=1)
    assert scene.truth["total"]["cars"] == next(p.n_cars for p in plans if p.day == day)
    with rasterio.open(scene.image_path) as ds:
        assert ds.crs.to_string() == utm_crs_for(10.004, 50.0025) and ds.res == (3.0, 3.0)


def test_scene_too_small_for_the_aoi_is_refused(aoi: AOI, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="scene_size_m"):
        publish_season(aoi, tmp_path, dt.date(2023, 9, 1), dt.date(2023, 9, 1), scene_size_m=(1500.0, 1500.0))


# --- the files --------------------------------------------------------------------------------


def test_images_and_masks_are_valid_cogs(aoi: AOI, season: tuple[Path, dict[str, SimulatedScene]]) -> None:
    c = aoi.geometry.centroid
    for scene in season[1].values():
        for path in (scene.image_path, scene.mask_path):
            valid, errors, _warnings = cog_validate(str(path), quiet=True)
            assert valid and not errors, (path, errors)
        with rasterio.open(scene.image_path) as img, rasterio.open(scene.mask_path) as mask:
            assert img.count == 4 and img.dtypes == ("uint16",) * 4 and img.nodata == 0
            assert img.descriptions == ("blue", "green", "red", "nir")
            assert img.crs.to_string() == utm_crs_for(c.x, c.y) and img.res == (3.0, 3.0)
            structure = img.tags(ns="IMAGE_STRUCTURE")
            assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "2"
            assert img.block_shapes[0] == (512, 512) and img.overviews(1)
            assert mask.count == 8 and mask.dtypes == ("uint8",) * 8
            assert (mask.crs, mask.transform, mask.shape) == (img.crs, img.transform, img.shape)
            # the grid is not the AOI grid's: origin off the 3 m lattice
            assert (img.transform.c % 3.0, img.transform.f % 3.0) != (0.0, 0.0)
            data, m = img.read(), mask.read()
        nodata = data[0] == 0
        assert (m[0][nodata] == 0).all() and (m[7][nodata] == 1).all()
        assert ((data > 0) == ~nodata).all(), "valid pixels are never 0"
        classes = m[[0, 2, 3, 4, 5]].astype(int).sum(axis=0)
        assert classes[~nodata].max() == 1 and classes[~nodata].min() == 1, "one class per pixel"


def test_items_are_readable_stac(season: tuple[Path, dict[str, SimulatedScene]]) -> None:
    out, scenes = season
    collection = pystac.Collection.from_file(str(out / "collection.json"))
    items = {i.id: i for i in collection.get_items()}
    assert set(items) == {s.scene_id for s in scenes.values()}
    assert validate_dict({**collection.to_dict(), "stac_extensions": []})
    for scene in scenes.values():
        item = pystac.Item.from_file(str(scene.item_path))
        assert item.id == scene.scene_id and item.datetime == scene.acquired
        assert validate_dict({**json.loads(scene.item_path.read_text()), "stac_extensions": []})
        p = item.properties
        for key in (
            "eo:cloud_cover",
            "view:sun_azimuth",
            "view:sun_elevation",
            "view:off_nadir",
            "proj:shape",
            "proj:transform",
            "gsd",
            "platform",
            "constellation",
            "created",
            "updated",
        ):
            assert key in p, key
        assert "proj:code" in p or "proj:epsg" in p
        assert item.collection_id == collection.id == "railwatch-sim-psscene"
        created = dt.datetime.fromisoformat(p["created"].replace("Z", "+00:00"))
        assert dt.timedelta(hours=1) < created - scene.acquired < dt.timedelta(hours=8)
        assert 20 < p["view:sun_elevation"] < 60 and 120 < p["view:sun_azimuth"] < 200
        assert item.assets["analytic"].roles == ["data"]
        assert [b["common_name"] for b in item.assets["analytic"].extra_fields["eo:bands"]] == [
            "blue", "green", "red", "nir"]  # fmt: skip
        assert item.assets["udm2"].roles == ["data-mask"] and item.assets["truth"].roles == ["metadata"]
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href()).is_file()
        with rasterio.open(item.assets["analytic"].get_absolute_href()) as ds:
            assert p["proj:shape"] == [ds.height, ds.width]
            assert np.allclose(p["proj:transform"], list(ds.transform)[:6])
        mask, _ = _read(scene.mask_path)
        valid = mask[7] != 1
        assert p["eo:cloud_cover"] == pytest.approx(100 * mask[5][valid].mean(), abs=0.01)
        assert scene.scene_id[:8] == scene.acquired.strftime("%Y%m%d") and len(scene.scene_id) == 23


# --- the truth and the pixels ----------------------------------------------------------------


def test_truth_follows_the_plan(aoi: AOI, season: tuple[Path, dict[str, SimulatedScene]]) -> None:
    scenes = season[1]
    assert scenes[EMPTY].truth["total"]["cars"] == 0
    assert abs(scenes[PEAK].truth["total"]["cars"] - 73) <= 3
    loaded = sorted(b - a for t in scenes[LOADED].truth["tracks"] for a, b in t["segments"])
    assert len(loaded) == 2 and abs(loaded[0] - 200) <= 30 and abs(loaded[1] - 300) <= 45
    for day, scene in scenes.items():
        truth = json.loads(scene.truth_path.read_text())
        assert truth == scene.truth and truth["aoi"] == "tumangang" and len(truth["shift_m"]) == 2
        plan = plan_day(aoi, dt.date.fromisoformat(day))
        for track in truth["tracks"]:
            trains = [t for t in plan.trains if t.track_id == track["id"]]
            assert track["cars"] == len(track["cars_list"]) == sum(len(t.cars) for t in trains)
            assert track["occupied_m"] == pytest.approx(sum(b - a for a, b in track["segments"]), abs=0.05)
            assert 0 <= track["cars_clear"] <= track["cars"] and 0 <= track["clear_fraction"] <= 1
            for car in track["cars_list"]:
                assert any(a - 0.01 <= car["start_m"] and car["start_m"] + car["length_m"] <= b + 0.01
                           for a, b in track["segments"])  # fmt: skip
        assert truth["total"]["cars"] == plan.n_cars
    assert scenes[PEAK].truth["total"]["clear_fraction"] == 1.0
    assert scenes[OVERCAST].truth["total"]["clear_fraction"] < 0.2


def test_cars_are_visible_in_the_pixels(aoi: AOI, season: tuple[Path, dict[str, SimulatedScene]]) -> None:
    """Along t4, the loaded stretch changes between the empty and the peak day; the bare one doesn't."""
    scenes = season[1]
    (segment,) = next(t for t in scenes[PEAK].truth["tracks"] if t["id"] == "t4")["segments"]
    loaded_s = np.arange(segment[0] + 10, segment[1] - 10, 3.0)
    bare_s = np.arange(segment[1] + 90, 1080.0, 3.0)
    diffs = {}
    for name, s in (("loaded", loaded_s), ("bare", bare_s)):
        values = [_sample(scenes[d].image_path, _track_points(aoi, "t4", s, scenes[d].truth["shift_m"]))
                  for d in (EMPTY, PEAK)]  # fmt: skip
        diffs[name] = float(np.abs(values[0] - values[1]).mean())
    assert diffs["loaded"] > 3 * diffs["bare"] and diffs["loaded"] > 250, diffs


def test_clouds_are_where_the_mask_says(season: tuple[Path, dict[str, SimulatedScene]]) -> None:
    for day in (CLOUDY, OVERCAST):
        image, _ = _read(season[1][day].image_path)
        mask, _ = _read(season[1][day].mask_path)
        cloud, clear = mask[5] == 1, mask[0] == 1
        assert cloud.any() and not (cloud & clear).any()
        visible = image[:3].astype(float).mean(axis=0)
        assert np.median(visible[cloud]) > 3500
        if clear.any():
            assert np.median(visible[clear]) < 1800
        # haze_light surrounds what is not clear (Planet's mask is buffered)
        assert (mask[3] == 1).any()
    clear_day, _ = _read(season[1][PEAK].mask_path)
    assert (clear_day[0][clear_day[7] != 1] == 1).all()


# --- determinism and idempotency -------------------------------------------------------------


def test_same_seed_same_pixels_inline_or_pooled(aoi: AOI, tmp_path: Path) -> None:
    start, end = dt.date(2023, 9, 6), dt.date(2023, 9, 7)
    pooled = publish_season(aoi, tmp_path / "a", start, end, scene_size_m=SIZE, workers=2)
    inline = publish_season(aoi, tmp_path / "b", start, end, scene_size_m=SIZE, workers=1)
    other = publish_season(aoi, tmp_path / "c", start, start, seed=5, scene_size_m=SIZE, workers=1)
    assert [s.scene_id for s in pooled] == [s.scene_id for s in inline]
    for a, b in zip(pooled, inline, strict=True):
        assert np.array_equal(_read(a.image_path)[0], _read(b.image_path)[0])
        assert np.array_equal(_read(a.mask_path)[0], _read(b.mask_path)[0])
        assert a.truth == b.truth
    assert other[0].scene_id != inline[0].scene_id


def test_rerun_renders_nothing_and_wider_range_adds_items(
    aoi: AOI, season: tuple[Path, dict[str, SimulatedScene]]
) -> None:
    out, scenes = season
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "collection.json")
    before = {p: p.stat().st_mtime_ns for p in files}
    seen: list[SimulatedScene] = []
    again = publish_season(aoi, out, dt.date(2023, 9, 14), dt.date(2023, 9, 14), scene_size_m=SIZE,
                           on_scene=seen.append)  # fmt: skip
    assert [s.scene_id for s in again] == [scenes[EMPTY].scene_id] and not again[0].rendered
    assert len(seen) == 1 and again[0].truth == scenes[EMPTY].truth
    wider = publish_season(aoi, out, dt.date(2023, 9, 13), dt.date(2023, 9, 14), scene_size_m=SIZE, workers=1)
    assert [s.rendered for s in wider] == [True, False]
    assert {p: p.stat().st_mtime_ns for p in files} == before
    links = json.loads((out / "collection.json").read_text())["links"]
    hrefs = [link["href"] for link in links if link["rel"] == "item"]
    assert len(hrefs) == len(set(hrefs)) == len(DAYS) + 1
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def _phase_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Shift (rows, cols) of `a` relative to `b`, to a fraction of a pixel (parabolic peak)."""
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    cross = np.fft.fft2((a - a.mean()) * window) * np.conj(np.fft.fft2((b - b.mean()) * window))
    surface = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
    peak = np.unravel_index(np.argmax(surface), surface.shape)
    shift = []
    for axis, size in enumerate(surface.shape):
        idx = list(peak)
        values = []
        for step in (-1, 0, 1):
            idx[axis] = (peak[axis] + step) % size
            values.append(surface[tuple(idx)])
        offset = peak[axis] + 0.5 * (values[0] - values[2]) / (values[0] - 2 * values[1] + values[2])
        shift.append(offset - size if offset > size / 2 else offset)
    return shift[0], shift[1]


def test_misregistration_is_recoverable_by_phase_correlation(
    aoi: AOI, season: tuple[Path, dict[str, SimulatedScene]]
) -> None:
    """The ground has enough texture that registering two dates recovers their relative shift."""
    from rasterio.warp import Resampling, reproject

    from railwatch.grid import aoi_grid

    grid = aoi_grid(aoi, buffer_m=150.0)
    clips, shifts = [], []
    for day in (EMPTY, PEAK):
        clip = np.zeros((grid.height, grid.width), dtype=np.float32)
        with rasterio.open(season[1][day].image_path) as ds:
            reproject(rasterio.band(ds, 4), clip, dst_transform=grid.transform, dst_crs=grid.crs,
                      resampling=Resampling.bilinear)  # fmt: skip
        clips.append(clip)
        shifts.append(np.asarray(season[1][day].truth["shift_m"]))
    rows, cols = _phase_correlation(clips[1], clips[0])
    expected = shifts[1] - shifts[0]
    assert abs(expected).max() > 1.0, "dates should differ in misregistration"
    assert np.hypot(cols * 3.0 - expected[0], -rows * 3.0 - expected[1]) < 1.5, (rows, cols, expected)


def test_incomplete_scene_is_rendered_again_and_stale_temp_files_go(aoi: AOI, tmp_path: Path) -> None:
    day = dt.date(2023, 9, 2)
    (first,) = publish_season(aoi, tmp_path, day, day, scene_size_m=SIZE, workers=1)
    pixels = _read(first.image_path)[0]
    first.item_path.unlink()  # as if the run had been killed before the Item was written
    stale = first.image_path.with_name(".analytic.tif.999999999.tmp")
    stale.write_bytes(b"half a file")
    (again,) = publish_season(aoi, tmp_path, day, day, scene_size_m=SIZE, workers=1)
    assert again.rendered and again.item_path.is_file() and not stale.exists()
    assert np.array_equal(_read(again.image_path)[0], pixels)
    (bigger,) = publish_season(aoi, tmp_path, day, day, scene_size_m=(3000.0, 2800.0), workers=1)
    assert bigger.rendered and _read(bigger.image_path)[0].shape == (4, 933, 1000)
