"""`railwatch detect` keeps the contract of spec/detect-cli.md: flags, JSON, exit codes."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.errors import NodataShadowWarning

from railwatch.aoi import load_aoi
from railwatch.cli import main
from railwatch.grid import aoi_grid
from railwatch.measure import track_lines
from railwatch.simulate import SimulatedScene, publish_season
from railwatch.simulate.cases import publish_case

REPO = Path(__file__).resolve().parents[1]
AOI = REPO / "aois" / "tumangang.geojson"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimulatedScene]:
    """A loaded quiet day and the empty day, from the product's simulator."""
    out = tmp_path_factory.mktemp("sim")
    made = publish_season(load_aoi(AOI), out, dt.date(2023, 9, 13), dt.date(2023, 9, 14),
                          scene_size_m=(3000.0, 3000.0), workers=1)
    return {s.acquired.date().isoformat(): s for s in made}


def detect(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(["detect", "--aoi", str(AOI), *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.out), captured.err


def test_json_contract_and_counts_near_truth(scenes: dict[str, SimulatedScene],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    day, empty = scenes["2023-09-13"], scenes["2023-09-14"]
    code, result, _ = detect(["--image", str(day.image_path), "--mask", str(day.mask_path),
                              "--reference", str(empty.image_path),
                              "--reference-mask", str(empty.mask_path)], capsys)
    assert code == 0
    assert result["aoi"] == "tumangang" and result["gsd_m"] == 3.0
    assert {t["id"] for t in result["tracks"]} == {t["id"] for t in day.truth["tracks"]}
    keys = {"occupied_m", "cars", "cars_low", "cars_high", "valid_fraction"}
    assert keys <= set(result["total"]) and all(keys | {"id", "length_m"} <= set(t) for t in result["tracks"])
    assert len(result["quality"]["shift_m"]) == 2 and isinstance(result["quality"]["flags"], list)
    truth = day.truth["total"]["cars_clear"]
    # without the sun the shadow side is learnt from the scene and a shadow may read as cars:
    # the interval must still hold the truth (bench/detect_accuracy.py scores many more scenes)
    assert result["total"]["cars_low"] <= truth <= result["total"]["cars_high"], (result["total"], truth)
    assert abs(result["total"]["cars"] - truth) <= max(2, 0.4 * truth), (result["total"], truth)
    # the sun's azimuth and elevation from the scene's metadata place the shadows: the issue's
    # 3 m target for a clear scene
    props = json.loads(day.item_path.read_text())["properties"]
    sun, elevation = props["view:sun_azimuth"], props["view:sun_elevation"]
    code, sunny, _ = detect(["--image", str(day.image_path), "--mask", str(day.mask_path),
                             "--reference", str(empty.image_path), "--sun-azimuth", str(sun),
                             "--sun-elevation", str(elevation)], capsys)
    assert code == 0 and abs(sunny["total"]["cars"] - truth) <= max(2, 0.15 * truth)
    assert result["total"]["cars_low"] <= result["total"]["cars"] <= result["total"]["cars_high"]
    # without a reference it still answers, and says so
    code, alone, _ = detect(["--image", str(day.image_path), "--mask", str(day.mask_path)], capsys)
    assert code == 0 and "no_reference" in alone["quality"]["flags"]
    # the empty day against itself is empty
    code, nothing, _ = detect(["--image", str(empty.image_path), "--reference", str(empty.image_path)],
                              capsys)
    assert code == 0 and nothing["total"]["cars"] <= 1


def test_float_reflectance_and_three_bands_work(scenes: dict[str, SimulatedScene], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    day = scenes["2023-09-13"]
    with rasterio.open(day.image_path) as src:
        profile = src.profile
        data = src.read([1, 2, 3]).astype("float32") / 10000.0
    profile.update(count=3, dtype="float32", nodata=None, predictor=1)
    floaty = tmp_path / "float3.tif"
    with rasterio.open(floaty, "w", **profile) as dst:
        dst.write(data)
    code, result, _ = detect(["--image", str(floaty), "--mask", str(day.mask_path)], capsys)
    assert code == 0 and np.isfinite(result["total"]["occupied_m"])


def _variant(source: Path, out: Path, data: Any = None, shift_m: float = 0.0, **update: Any) -> str:
    """A copy of `source` with other pixels (`data`), moved `shift_m` east, or another profile."""
    with rasterio.open(source) as src:
        profile, pixels = src.profile, src.read()
    profile.update(transform=profile["transform"] * rasterio.Affine.translation(shift_m / 3.0, 0),
                   **update)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(pixels if data is None else data)
    return str(out)


@pytest.mark.parametrize("case", ["not-a-raster", "two-bands", "no-overlap", "bad-aoi", "bad-format",
                                  "bad-sun", "bad-elevation", "reference-folder", "reference-far",
                                  "mask-0-255", "mask-far", "blank", "truncated"])
def test_bad_input_exits_non_zero_with_one_line(case: str, scenes: dict[str, SimulatedScene],
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = scenes["2023-09-13"]
    image, aoi, extra = str(day.image_path), str(AOI), []
    if case == "not-a-raster":
        image = str(tmp_path / "x.tif")
        Path(image).write_text("hello")
    elif case == "two-bands":
        with rasterio.open(day.image_path) as src:
            profile, data = src.profile, src.read([1, 2])
        profile.update(count=2)
        image = str(tmp_path / "two.tif")
        with rasterio.open(image, "w", **profile) as dst:
            dst.write(data)
    elif case == "no-overlap":
        with rasterio.open(day.image_path) as src:
            profile, data = src.profile, src.read()
        profile.update(transform=profile["transform"] * rasterio.Affine.translation(20000, 0))
        image = str(tmp_path / "far.tif")
        with rasterio.open(image, "w", **profile) as dst:
            dst.write(data)
    elif case == "bad-aoi":
        aoi = str(tmp_path / "bad.geojson")
        Path(aoi).write_text('{"type": "FeatureCollection", "features": []}')
    elif case == "bad-sun":
        extra = ["--sun-azimuth", "400"]
    elif case == "bad-elevation":
        extra = ["--sun-elevation", "-5"]
    elif case == "reference-folder":
        extra = ["--reference", str(tmp_path)]
    elif case == "reference-far":
        extra = ["--reference", _variant(scenes["2023-09-14"].image_path, tmp_path / "far.tif",
                                         shift_m=20000.0)]
    elif case == "mask-0-255":
        with rasterio.open(day.mask_path) as src:
            udm = src.read()
        udm[0] = np.where(udm[0] == 1, 255, 0)
        extra = ["--mask", _variant(day.mask_path, tmp_path / "m255.tif", udm)]
    elif case == "mask-far":
        extra = ["--mask", _variant(day.mask_path, tmp_path / "mfar.tif", shift_m=20000.0)]
    elif case == "blank":
        with rasterio.open(day.image_path) as src:
            zeros = np.zeros((src.count, src.height, src.width), dtype=src.dtypes[0])
        image = _variant(day.image_path, tmp_path / "blank.tif", zeros, nodata=None)
    elif case == "truncated":
        image = str(tmp_path / "cut.tif")
        whole = Path(day.image_path).read_bytes()
        Path(image).write_bytes(whole[: len(whole) // 2])
    else:
        extra = ["--format", "yaml"]
    code = main(["detect", "--aoi", aoi, "--image", image, *extra])
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("railwatch: error: "), captured.err
    says = {"reference-folder": "cannot read the reference", "reference-far": "no data over AOI",
            "mask-0-255": "must be 1 where clear", "mask-far": "mask has no data over AOI",
            "blank": "blank over AOI", "truncated": "corrupt, truncated"}
    assert says.get(case, "") in lines[0]


def test_a_scene_covering_part_of_the_aoi_is_partial_not_cloudy(
        scenes: dict[str, SimulatedScene], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The western 60 % of the scene as nodata: what is left is clear, so the scene is flagged
    partial_coverage (not cloudy) and the tracks' valid fractions say how much was seen."""
    day = scenes["2023-09-13"]
    with rasterio.open(day.image_path) as src:
        pixels, nodata = src.read(), src.nodata
    cut = pixels.copy()
    cut[:, :, : int(cut.shape[2] * 0.6)] = nodata
    image = _variant(day.image_path, tmp_path / "part.tif", cut)
    code, result, _ = detect(["--image", image, "--mask", str(day.mask_path)], capsys)
    assert code == 0
    assert "partial_coverage" in result["quality"]["flags"]
    assert "cloudy" not in result["quality"]["flags"]
    assert 0.0 < result["total"]["valid_fraction"] < 0.9


def test_a_half_metre_scene_is_registered_with_confidence(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """At 0.5 m (SkySat-like) a clear scene against an empty reference is put on the tracks
    without a `low_registration_confidence` flag: in the pipeline that flag keeps a scene out of
    the background model and out of alerts, so a wrong flag there silences a whole yard."""
    aoi_path = REPO / "bench" / "aois" / "small-yard.geojson"
    aoi, size = load_aoi(aoi_path), (620.0, 420.0)
    reference = publish_case(aoi, tmp_path, "empty", 1000, 0.5, scene_size_m=size)
    scene = publish_case(aoi, tmp_path, "clear", 3, 0.5, scene_size_m=size)
    code = main(["detect", "--aoi", str(aoi_path), "--image", str(scene.image_path),
                 "--mask", str(scene.mask_path), "--reference", str(reference.image_path),
                 "--reference-mask", str(reference.mask_path)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["gsd_m"] == 0.5
    assert "low_registration_confidence" not in result["quality"]["flags"], result["quality"]
    # the correction reported undoes the image's displacement (east, north) from the AOI,
    # across the sidings (along them the bed shows little, and the reference's own error stays)
    first = track_lines(aoi, aoi_grid(aoi, gsd_m=0.5))[0].parts[0]
    along = (first[-1] - first[0]) / np.hypot(*(first[-1] - first[0]))  # (col, row)
    across = np.array([-along[1], along[0]])
    east, north = scene.truth["shift_m"]
    error = np.array(result["quality"]["shift_m"]) + np.array([east, -north])  # (col, row) metres
    assert abs(float(error @ across)) < 0.25, (result["quality"], scene.truth["shift_m"])


def test_an_eight_bit_image_runs_without_raw_warnings(scenes: dict[str, SimulatedScene],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A 4-band uint8 GeoTIFF is written as RGBA by GDAL: its nodata value shadows the 'alpha'
    (nir) band, which rasterio warns about on every mask read. The user sees a result, not that."""
    day = scenes["2023-09-13"]
    with rasterio.open(day.image_path) as src:
        pixels = src.read()
    small = np.clip(pixels // 40, 0, 255).astype("uint8")
    image = _variant(day.image_path, tmp_path / "u8.tif", small, dtype="uint8", nodata=0,
                     photometric="RGB", alpha="YES")
    with rasterio.open(image) as src:
        assert src.colorinterp[-1] == rasterio.enums.ColorInterp.alpha  # the case it is about
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, result, _ = detect(["--image", image], capsys)
    assert code == 0 and result["total"]["cars"] >= 0
    assert not [w for w in seen if issubclass(w.category, NodataShadowWarning)]
