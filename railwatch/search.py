"""What a run would process over an AOI, and what it would skip and why, without registering
anything: the `railwatch search` dry run over the same catalogs and scene registry the flows use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from railwatch.adapters.catalogs import Catalog
from railwatch.adapters.counts import CountsStore
from railwatch.adapters.registry import SceneRow, is_due, is_newer_version
from railwatch.aoi import AOI
from railwatch.errors import ConfigError
from railwatch.models import SceneRef

SOURCE_KINDS = {"sim": ("simulator",), "simulator": ("simulator",), "stac": ("stac+", ".json"),
                "planet": ("planet",)}


@dataclass(frozen=True)
class Planned:
    """One catalog entry and what a run would do with it."""

    source: str
    scene_id: str
    acquired: datetime | None  # None for items the catalog could not turn into scenes
    process: bool
    reason: str


def select_sources(configured: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The configured catalog sources of the wanted kinds (sim, stac, planet) or given verbatim
    (a full source string); all configured ones when nothing is wanted."""
    if not wanted:
        return list(configured)
    out: list[str] = []
    for want in wanted:
        kind = SOURCE_KINDS.get(want)
        if kind is None:
            out.append(want)  # a full source string, e.g. stac+https://…?collections=…
            continue
        found = [s for s in configured
                 if any(s.startswith(k) if k != ".json" else s.endswith(k) for k in kind)]
        if not found and want in ("sim", "simulator"):
            found = ["simulator"]
        if not found:
            raise ConfigError(f"no {want} source is configured: add one to RAILWATCH_CATALOGS "
                              f"or pass the full source string to --source")
        out += [s for s in found if s not in out]
    return out


def decide(scene: SceneRef, row: SceneRow | None, max_attempts: int, force: bool) -> tuple[bool, str]:
    """(process?, why) for a found scene given its registry row, as a backfill would decide."""
    if row is None:
        return True, "new"
    if is_newer_version(row, scene):
        return True, f"new version {row.version} -> {scene.version}"
    if not is_due(row, max_attempts, force):
        if row.status == "detected":
            return False, "done"
        return False, f"failed {row.attempts}× (gave up): {row.last_error}"
    if row.status == "detected":
        return True, "done, reprocessed (--force)"
    if row.status == "failed":
        return True, f"retry, attempt {row.attempts + 1}: last failed with {row.last_error}"
    return True, f"pending ({row.status})"


def plan_search(aoi: AOI, catalogs: Sequence[Catalog], db: CountsStore, start: datetime,
                end: datetime, max_attempts: int = 3, force: bool = False) -> list[Planned]:
    """Every scene the catalogs list over `aoi` in [start, end) and what a backfill would do."""
    rows = {(r.source, r.scene_id): r for r in db.scene_rows(aoi.id)}
    out: list[Planned] = []
    for catalog in catalogs:
        result = catalog.search(aoi, start, end)
        for scene in sorted(result.scenes, key=lambda s: (s.acquired, s.scene_id)):
            process, why = decide(scene, rows.get((scene.source, scene.scene_id)), max_attempts, force)
            out.append(Planned(scene.source, scene.scene_id, scene.acquired, process, why))
        out += [Planned(catalog.name, item, None, False, f"unusable item: {reason}")
                for item, reason in result.skipped]
    return out
