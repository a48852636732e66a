"""Bad configuration: every invalid AOI file case of spec/aoi-format.md, a bad database URL, a
bad store URL. Each must stop the run with one line that says what to fix, before any scene is
touched; once fixed, the run converges to the clean counts."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from typing import Any

from tests.fault_lab import Case, Lab
from tests.faultkit import AOI_DIR, AOI_ID, FaultRow, Outcome, World, judge

Doc = dict[str, Any]


def _feature(doc: Doc, kind: str) -> Doc:
    return next(f for f in doc["features"] if f["properties"]["kind"] == kind)


def _set_geometry(kind: str, geometry: Doc) -> Callable[[Doc], Any]:
    def change(doc: Doc) -> Doc:
        _feature(doc, kind)["geometry"] = geometry
        return doc
    return change


def _duplicate_track(doc: Doc) -> Doc:
    doc["features"].append(copy.deepcopy(_feature(doc, "track")))
    return doc


def _aoi_id(value: str) -> Callable[[Doc], Doc]:
    def change(doc: Doc) -> Doc:
        _feature(doc, "aoi")["properties"]["id"] = value
        return doc
    return change


def _without(kind: str) -> Callable[[Doc], Doc]:
    def change(doc: Doc) -> Doc:
        doc["features"] = [f for f in doc["features"] if f["properties"]["kind"] != kind]
        return doc
    return change


def _two_aois(doc: Doc) -> Doc:
    doc["features"].append(copy.deepcopy(_feature(doc, "aoi")))
    return doc


BOWTIE = {"type": "Polygon", "coordinates": [[[130.590, 42.412], [130.612, 42.428], [130.612, 42.412],
                                               [130.590, 42.428], [130.590, 42.412]]]}
HUGE = {"type": "Polygon", "coordinates": [[[130.0, 42.0], [131.0, 42.0], [131.0, 43.0], [130.0, 43.0],
                                             [130.0, 42.0]]]}

# (spec case, change of the AOI document, or raw file text)
AOI_CASES: list[tuple[str, Callable[[Doc], Any] | str]] = [
    ("not JSON", '{"type": "FeatureCollection", "features": [}'),
    ("not a FeatureCollection", lambda d: {"type": "Feature", "properties": {}}),
    ("no aoi feature", _without("aoi")),
    ("two aoi features", _two_aois),
    ("no track feature", _without("track")),
    ("self-intersecting polygon", _set_geometry("aoi", BOWTIE)),
    ("track with 1 vertex", _set_geometry("track", {"type": "LineString", "coordinates": [[130.6, 42.42]]})),
    ("coordinates out of range", _set_geometry("track", {"type": "LineString",
                                                         "coordinates": [[230.6, 42.42], [130.6, 42.42]]})),
    ("track leaving the AOI", _set_geometry("track", {"type": "LineString",
                                                      "coordinates": [[130.60, 42.42], [130.70, 42.42]]})),
    ("duplicate track ids", _duplicate_track),
    ("bad id slug", _aoi_id("Tumangang Yard")),
    ("AOI too large for a yard", _set_geometry("aoi", HUGE)),
]


def refused_before_work(world: World, outcome: Outcome, must_name: str) -> str:
    """'' when the run failed with one line naming `must_name` and touched nothing, else why not."""
    if outcome.state != "failed" or must_name not in outcome.error or "\n" in outcome.error:
        return f"not refused clearly: {outcome.describe()}"
    if world.store_audit()[0] or world.registry_or_none():
        return "refused, but after work had started"
    return ""


def invalid_aoi_files(lab: Lab, layer: str, fault: str) -> FaultRow:
    """Each invalid case in turn replaces the AOI file; then the good file comes back."""
    world = lab.world(fault)
    folder = world.home / "aois"
    shutil.copytree(AOI_DIR, folder)
    world.settings["RAILWATCH_AOI_DIR"] = str(folder)
    path = folder / f"{AOI_ID}.geojson"
    good = path.read_text()
    problems, first = [], Outcome("completed")
    for name, change in AOI_CASES:
        path.write_text(change if isinstance(change, str) else json.dumps(change(json.loads(good))))
        outcome = world.backfill()
        first = first if first.state == "failed" else outcome
        why = refused_before_work(world, outcome, path.name)
        if why:
            problems.append(f"{name}: {why}")
    path.write_text(good)
    during = Outcome("failed", error=f"{len(AOI_CASES) - len(problems)}/{len(AOI_CASES)} cases refused "
                     f"before any work, e.g. {first.error}") if not problems else \
        Outcome("unclear", error="; ".join(problems))
    return judge(layer, fault, lab.baseline, world, during, world.backfill())


def bad_setting(variable: str, value: str, must_name: str) -> Callable[[Lab, str, str], FaultRow]:
    """A case: `variable` set to `value` is refused before any work; then it is unset."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        world = lab.world(fault)
        world.settings[variable] = value
        outcome = world.backfill()
        why = refused_before_work(world, outcome, must_name)
        during = Outcome("unclear", error=why) if why else outcome
        del world.settings[variable]
        return judge(layer, fault, lab.baseline, world, during, world.backfill())
    return run


SECRET = "s3cr3t-db-pass"

CASES = [
    Case("configuration", f"invalid AOI file ({len(AOI_CASES)} cases of spec/aoi-format.md), then fixed",
         invalid_aoi_files),
    Case("configuration", "bad database URL (unreachable PostgreSQL), then fixed",
         bad_setting("RAILWATCH_DATABASE_URL", f"postgresql+psycopg://rw:{SECRET}@127.0.0.1:9/counts",
                     "counts database")),
    Case("configuration", "bad database URL (unknown dialect), then fixed",
         bad_setting("RAILWATCH_DATABASE_URL", "oracle2://host/db", "database URL")),
    Case("configuration", "bad store URL (ftp://), then fixed",
         bad_setting("RAILWATCH_STORE", "ftp://example.org/clips", "RAILWATCH_STORE")),
]
