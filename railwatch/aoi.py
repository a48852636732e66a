"""Read and validate AOI files (spec/aoi-format.md) into `AOI` objects.

Every failure is an `AOIError` whose one-line message names the file, the feature and what
to fix, so a user can mend the file without reading code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from railwatch.errors import AOIError

SLUG = re.compile(r"^[a-z0-9-]+$")
DEFAULT_CAR_PITCH_M = 15.0
DEFAULT_GSD_M = 3.0  # the clip grid of a PlanetScope-like AOI
GSD_RANGE_M = (0.1, 30.0)  # clip grids railwatch can count cars on: a metre a car or more
DEFAULT_MAX_AREA_KM2 = 100.0
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Track:
    """A track centreline in lon/lat."""

    id: str
    geometry: BaseGeometry
    name: str | None = None

    @property
    def length_m(self) -> float:
        return float(_GEOD.geometry_length(self.geometry))


@dataclass(frozen=True)
class AOI:
    """A watched area of interest: a footprint and the tracks to measure in it."""

    id: str
    geometry: BaseGeometry
    tracks: tuple[Track, ...]
    name: str | None = None
    car_pitch_m: float = DEFAULT_CAR_PITCH_M
    gsd_m: float = DEFAULT_GSD_M  # metres per pixel of the AOI's clip grid
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def area_km2(self) -> float:
        return abs(float(_GEOD.geometry_area_perimeter(self.geometry)[0])) / 1e6

    @property
    def label(self) -> str:
        return self.name or self.id

    def prop(self, key: str, default: Any = None) -> Any:
        """An optional railwatch property of the AOI feature (unknown keys are kept)."""
        return self.properties.get(key, default)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_surge_properties(props: dict[str, Any], where: str) -> None:
    """`history_max_cars` and `surge` are read only when counts are stored: checked here, so a
    typo stops the run before any work, not after a backfill's clipping and detection (the
    surge keys against the test's thresholds: `alerts.surge_params`, which preflight calls)."""
    history_max = props.get("history_max_cars")
    if history_max is not None and not (_is_number(history_max) and history_max >= 0):
        raise AOIError(f"{where}: history_max_cars must be a number >= 0 (the largest count known "
                       f"before railwatch watched the yard) or null, found {history_max!r}")
    surge = props.get("surge", {})
    if not isinstance(surge, dict):
        raise AOIError(f"{where}: surge must be an object of thresholds, e.g. "
                       f'{{"ratio_threshold": 2.0}}, found {surge!r}')
    for key, value in surge.items():
        if not (_is_number(value) and value >= 0):
            raise AOIError(f"{where}: surge.{key} must be a number >= 0, found {value!r}")


def load_aoi(path: str | Path, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> AOI:
    """Read one AOI file and validate it; raise `AOIError` saying what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AOIError(f"{path}: cannot read the AOI file ({exc.strerror})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AOIError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    return parse_aoi(doc, source=str(path), max_area_km2=max_area_km2)


def parse_aoi(doc: Any, source: str = "<memory>", max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> AOI:
    """Validate a decoded GeoJSON document as an AOI file."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise AOIError(
            f"{source}: not a GeoJSON FeatureCollection (found type {found!r}); "
            'wrap the AOI and its tracks in {"type": "FeatureCollection", "features": [...]}'
        )
    features = doc.get("features")
    if not isinstance(features, list):
        raise AOIError(f"{source}: 'features' must be a list of GeoJSON features")

    aoi_features: list[tuple[int, dict[str, Any]]] = []
    track_features: list[tuple[int, dict[str, Any]]] = []
    for index, feature in enumerate(features):
        where = f"{source}: feature #{index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise AOIError(f"{where} is not a GeoJSON Feature")
        props = feature.get("properties")
        if not isinstance(props, dict) or "kind" not in props:
            raise AOIError(f"{where} has no properties.kind; set it to \"aoi\" or \"track\"")
        if props["kind"] == "aoi":
            aoi_features.append((index, feature))
        elif props["kind"] == "track":
            track_features.append((index, feature))
    if len(aoi_features) != 1:
        raise AOIError(
            f"{source}: expected exactly one feature with kind \"aoi\", found {len(aoi_features)}"
        )
    if not track_features:
        raise AOIError(f"{source}: no feature with kind \"track\"; add at least one track centreline")

    index, feature = aoi_features[0]
    props = dict(feature["properties"])
    aoi_id = props.get("id")
    where = f"{source}: feature #{index} (aoi)"
    if not isinstance(aoi_id, str) or not SLUG.match(aoi_id):
        raise AOIError(f"{where}: id {aoi_id!r} must be a slug of a-z, 0-9 and '-' (e.g. \"tumangang\")")
    where = f"{source}: feature #{index} (aoi {aoi_id})"
    polygon = _geometry(feature, where, ("Polygon", "MultiPolygon"))
    pitch = props.get("car_pitch_m", DEFAULT_CAR_PITCH_M)
    if not (_is_number(pitch) and pitch > 0):
        raise AOIError(f"{where}: car_pitch_m must be a number > 0 (metres), found {pitch!r}")
    gsd, (finest, coarsest) = props.get("gsd_m", DEFAULT_GSD_M), GSD_RANGE_M
    if not (_is_number(gsd) and finest <= gsd <= coarsest):
        raise AOIError(f"{where}: gsd_m must be a number from {finest:g} to {coarsest:g} (metres per "
                       f"clip pixel, e.g. 3 or 0.5), found {gsd!r}")
    _check_surge_properties(props, where)
    name = props.get("name")
    if name is not None and not isinstance(name, str):
        raise AOIError(f"{where}: name must be a string")

    tracks: list[Track] = []
    seen: set[str] = set()
    for t_index, t_feature in track_features:
        t_id = t_feature["properties"].get("id")
        t_where = f"{source}: feature #{t_index} (track)"
        if not isinstance(t_id, str) or not t_id.strip():
            raise AOIError(f"{t_where}: a track needs a non-empty string id")
        t_where = f"{source}: feature #{t_index} (track {t_id})"
        if t_id in seen:
            raise AOIError(f"{t_where}: duplicate track id {t_id!r}; give each track its own id")
        seen.add(t_id)
        line = _geometry(t_feature, t_where, ("LineString", "MultiLineString"))
        if not polygon.covers(line):
            outside = line.difference(polygon).length / max(line.length, 1e-12)
            raise AOIError(
                f"{t_where}: the track leaves the AOI polygon ({outside:.0%} of it lies outside); "
                "enlarge the polygon or shorten the track"
            )
        t_name = t_feature["properties"].get("name")
        tracks.append(Track(id=t_id, geometry=line, name=t_name if isinstance(t_name, str) else None))

    aoi = AOI(
        id=aoi_id,
        geometry=polygon,
        tracks=tuple(tracks),
        name=name,
        car_pitch_m=float(pitch),
        gsd_m=float(gsd),
        properties=props,
        source=source,
    )
    if aoi.area_km2 > max_area_km2:
        raise AOIError(
            f"{where}: the AOI covers {aoi.area_km2:.1f} km², more than the {max_area_km2:g} km² "
            "limit for a rail yard; draw a tighter polygon or raise RAILWATCH_MAX_AOI_KM2"
        )
    return aoi


def load_registry(folder: str | Path, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> list[AOI]:
    """Every AOI file (``*.geojson``) in a folder, sorted by id; ids must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AOIError(f"{folder}: the AOI registry folder does not exist")
    aois = [load_aoi(p, max_area_km2) for p in sorted(folder.glob("*.geojson"))]
    by_id: dict[str, AOI] = {}
    for aoi in aois:
        if aoi.id in by_id:
            raise AOIError(
                f"{aoi.source}: AOI id {aoi.id!r} is also used by {by_id[aoi.id].source}; ids must be unique"
            )
        by_id[aoi.id] = aoi
    return sorted(aois, key=lambda a: a.id)


def select_aois(aois: Sequence[AOI], ids: Sequence[str] | None) -> list[AOI]:
    """The AOIs named by `ids` (all when None), failing clearly on an unknown id."""
    if not ids:
        return list(aois)
    known = {a.id: a for a in aois}
    missing = [i for i in ids if i not in known]
    if missing:
        raise AOIError(f"unknown AOI id(s) {', '.join(missing)}; known: {', '.join(sorted(known))}")
    return [known[i] for i in ids]


def _geometry(feature: dict[str, Any], where: str, allowed: tuple[str, ...]) -> BaseGeometry:
    geom = feature.get("geometry")
    if not isinstance(geom, dict) or geom.get("type") not in allowed:
        found = geom.get("type") if isinstance(geom, dict) else None
        raise AOIError(f"{where}: geometry must be a {' or '.join(allowed)}, found {found!r}")
    for lon, lat in _positions(geom.get("coordinates"), where):
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise AOIError(
                f"{where}: coordinate ({lon}, {lat}) is out of range; "
                "use longitude, latitude in degrees (EPSG:4326), longitude first"
            )
    if geom["type"].endswith("LineString"):
        parts = [geom["coordinates"]] if geom["type"] == "LineString" else geom["coordinates"]
        if any(len(part) < 2 for part in parts):
            raise AOIError(f"{where}: a track line needs at least 2 vertices")
    try:
        shp = shape(geom)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise AOIError(f"{where}: invalid geometry ({exc})") from exc
    if shp.is_empty:
        raise AOIError(f"{where}: the geometry is empty")
    if not shp.is_valid:
        raise AOIError(f"{where}: invalid geometry ({explain_validity(shp)}); fix the polygon ring")
    if shp.geom_type.endswith("LineString") and shp.length == 0:
        raise AOIError(f"{where}: the track has zero length")
    return shp


def _positions(coords: Any, where: str) -> Iterator[tuple[float, float]]:
    """Every (lon, lat) in a nested coordinate array, checking that each is a number pair."""
    if isinstance(coords, list) and coords and all(isinstance(c, int | float) for c in coords):
        if len(coords) < 2 or any(isinstance(c, bool) or not math.isfinite(c) for c in coords):
            raise AOIError(f"{where}: malformed coordinate {coords!r}")
        yield float(coords[0]), float(coords[1])
        return
    if not isinstance(coords, list) or not coords:
        raise AOIError(f"{where}: missing or malformed coordinates")
    for c in coords:
        yield from _positions(c, where)
