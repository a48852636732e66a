"""AOI files: the shipped one loads; every invalid case of spec/aoi-format.md fails clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from railwatch.aoi import load_aoi, load_registry, parse_aoi, select_aois
from railwatch.errors import AOIError
from railwatch.grid import aoi_grid

REPO = Path(__file__).resolve().parents[1]

BASE: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature",
         "properties": {"kind": "aoi", "id": "yard-1", "name": "Yard", "car_pitch_m": 14.5,
                        "custom_key": {"kept": True}},
         "geometry": {"type": "Polygon", "coordinates": [[[130.590, 42.412], [130.612, 42.412],
                                                          [130.612, 42.428], [130.590, 42.428],
                                                          [130.590, 42.412]]]}},
        {"type": "Feature", "properties": {"kind": "track", "id": "t1"},
         "geometry": {"type": "LineString", "coordinates": [[130.593, 42.415], [130.608, 42.424]]}},
    ],
}


def doc(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        feature, *keys = path.split("__")
        target = d["features"][int(feature[1:])]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return d


def test_shipped_tumangang_loads_with_tracks_and_grid() -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    assert aoi.id == "tumangang"
    assert 42.40 < aoi.geometry.centroid.y < 42.44 and 130.58 < aoi.geometry.centroid.x < 130.62
    assert len(aoi.tracks) >= 2 and all(t.length_m > 500 for t in aoi.tracks)
    grid = aoi_grid(aoi)
    assert grid.crs == "EPSG:32652" and grid.gsd_m == 3.0
    for track in aoi.tracks:  # every track lies inside the grid
        for part in grid.to_pixels(track.geometry):
            assert (part >= 0).all()
            assert (part[:, 0] <= grid.width).all() and (part[:, 1] <= grid.height).all()


def test_valid_document_keeps_unknown_keys_and_defaults() -> None:
    aoi = parse_aoi(BASE)
    assert aoi.prop("custom_key") == {"kept": True}
    assert aoi.car_pitch_m == 14.5
    d = doc()
    del d["features"][0]["properties"]["car_pitch_m"]
    assert parse_aoi(d).car_pitch_m == 15.0
    assert parse_aoi(d).gsd_m == 3.0  # PlanetScope-like unless the file says otherwise
    assert parse_aoi(doc(f0__properties__gsd_m=0.5)).gsd_m == 0.5


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "not a GeoJSON FeatureCollection"),
        ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "'features' must be a list"),
        ({"type": "FeatureCollection", "features": [BASE["features"][1]]},
         "exactly one feature with kind \"aoi\", found 0"),
        ({"type": "FeatureCollection",
          "features": [BASE["features"][0], BASE["features"][0], BASE["features"][1]]}, "found 2"),
        ({"type": "FeatureCollection", "features": [BASE["features"][0]]}, "no feature with kind \"track\""),
        (doc(f1__properties={"id": "t1"}), "has no properties.kind"),
        (doc(f0__properties__id="Yard One"), "must be a slug"),
        (doc(f0__properties__car_pitch_m=-3), "car_pitch_m must be a number > 0"),
        (doc(f0__properties__car_pitch_m="15"), "car_pitch_m must be a number > 0"),
        (doc(f0__properties__gsd_m="half"), "gsd_m must be a number from 0.1 to 30"),
        (doc(f0__properties__history_max_cars="twenty"), "history_max_cars must be a number >= 0"),
        (doc(f0__properties__surge=2.0), "surge must be an object of thresholds"),
        (doc(f0__properties__surge={"ratio_threshold": "2"}), "surge.ratio_threshold must be a number"),
        (doc(f0__properties__gsd_m=0), "gsd_m must be a number from 0.1 to 30"),
        (doc(f0__properties__gsd_m=300), "gsd_m must be a number from 0.1 to 30"),
        (doc(f0__geometry={"type": "Point", "coordinates": [130.6, 42.4]}),
         "must be a Polygon or MultiPolygon"),
        (doc(f0__geometry={"type": "Polygon", "coordinates": [[[130.590, 42.412], [130.612, 42.428],
                                                               [130.612, 42.412], [130.590, 42.428],
                                                               [130.590, 42.412]]]}), "Self-intersection"),
        (doc(f1__geometry={"type": "LineString", "coordinates": [[130.593, 42.415]]}), "at least 2 vertices"),
        (doc(f1__geometry={"type": "LineString", "coordinates": [[230.593, 42.415], [130.6, 42.42]]}),
         "out of range"),
        (doc(f1__geometry={"type": "LineString", "coordinates": [[42.415, 130.593], [42.42, 130.6]]}),
         "out of range"),
        (doc(f1__geometry={"type": "LineString", "coordinates": [[130.593, 42.415], [130.650, 42.424]]}),
         "leaves the AOI polygon"),
        (doc(f1__properties={"kind": "track"}), "non-empty string id"),
    ],
)
def test_invalid_documents_fail_with_a_clear_message(document: Any, message: str) -> None:
    with pytest.raises(AOIError, match=message.replace("(", r"\(")) as info:
        parse_aoi(document, source="yard.geojson")
    assert str(info.value).startswith("yard.geojson")
    assert "\n" not in str(info.value)


def test_duplicate_track_ids() -> None:
    d = doc()
    d["features"].append(copy.deepcopy(d["features"][1]))
    with pytest.raises(AOIError, match="duplicate track id 't1'"):
        parse_aoi(d)


def test_too_large_aoi_names_the_limit() -> None:
    d = doc(f0__geometry={"type": "Polygon", "coordinates": [[[130.0, 42.0], [131.0, 42.0], [131.0, 43.0],
                                                              [130.0, 43.0], [130.0, 42.0]]]},
            f1__geometry={"type": "LineString", "coordinates": [[130.593, 42.415], [130.608, 42.424]]})
    with pytest.raises(AOIError, match=r"km², more than the 100 km² limit"):
        parse_aoi(d)
    assert parse_aoi(d, max_area_km2=20000).area_km2 > 100


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [}')
    with pytest.raises(AOIError, match=r"bad.geojson: not valid JSON \(line 1"):
        load_aoi(bad)
    with pytest.raises(AOIError, match="cannot read the AOI file"):
        load_aoi(tmp_path / "missing.geojson")


def test_registry_rejects_duplicate_ids_and_unknown_selection(tmp_path: Path) -> None:
    for name in ("a.geojson", "b.geojson"):
        (tmp_path / name).write_text(json.dumps(BASE))
    with pytest.raises(AOIError, match="also used by"):
        load_registry(tmp_path)
    (tmp_path / "b.geojson").unlink()
    aois = load_registry(tmp_path)
    assert [a.id for a in select_aois(aois, None)] == ["yard-1"]
    with pytest.raises(AOIError, match="unknown AOI id"):
        select_aois(aois, ["nope"])


def test_a_surge_key_that_is_no_threshold_names_the_known_ones() -> None:
    from railwatch.alerts import surge_params

    aoi = parse_aoi(doc(f0__properties__surge={"ratio_thresh": 2.0}), source="yard.geojson")
    with pytest.raises(AOIError, match=r"yard.geojson: .*unknown key.s. ratio_thresh; known: window_days"):
        surge_params(aoi)
    assert surge_params(parse_aoi(doc(f0__properties__surge={"ratio_threshold": 2}))).ratio_threshold == 2
