"""The fault harness: a small railwatch world (a simulated catalog, a store, a counts database)
that runs the real backfill flow in this process, and the checks every fault is judged by —
the counts tables row by row against a clean run, the store's objects, the scene registry.

Used by tests/test_faults.py (one test per fault) and bench/faults.py (the table).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# a faulted world tests the plumbing, not the detector: the 0.5 m bench's small yard (4 sidings,
# 1/14 of Tumangang's pixels) on small scenes keeps each run short. Two of its days are cloudy,
# two hold 19 and 12 cars.
AOI_DIR = REPO / "bench" / "aois"
AOI_ID = "small-yard"
SCENE_KM = ("1.2", "1.0")
WORLD_START, WORLD_END = date(2023, 9, 20), date(2023, 9, 23)


@dataclass(frozen=True)
class Outcome:
    """How one run ended: completed (with the scenes it reported failed) or failed, and why."""

    state: str  # "completed" | "failed" | "unclear" (the harness saw it end badly: `error` says how)
    processed: int = 0
    failed: tuple[tuple[str, str], ...] = ()  # (scene id, reason)
    error: str = ""  # the run's own error, when it failed
    skipped: tuple[tuple[str, str], ...] = ()  # (catalog item, reason): items the search could not use

    def describe(self) -> str:
        if self.state == "unclear":
            return f"UNCLEAR: {self.error}"
        if self.state == "failed":
            return f"failed: {self.error}"
        bad = f", {len(self.failed)} scene(s) failed: {self.failed[0][1]}" if self.failed else ""
        odd = f", {len(self.skipped)} item(s) skipped: {self.skipped[0][1]}" if self.skipped else ""
        note = f" {self.error}" if self.error else ""
        return f"completed, {self.processed} processed{bad}{odd}{note}"


@dataclass(frozen=True)
class Diff:
    """The counts tables of a run against a clean run's, row by row."""

    rows: int
    lost: int
    duplicated: int
    changed: int

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.changed == 0


Rows = list[tuple[Any, ...]]


def render_world(home: Path) -> Path:
    """The simulator's scenes for the world's days, rendered once into `home` (`railwatch
    simulate` in a subprocess, as a user runs it); the simulator folder."""
    folder = home / "simulator"
    if not (folder / AOI_ID / "collection.json").is_file():
        from tests.cli_runs import cli_env, run_cli

        run_cli(["simulate", "--aoi", str(AOI_DIR / f"{AOI_ID}.geojson"), "--start", str(WORLD_START),
                 "--end", str(WORLD_END), "--scene-km", *SCENE_KM, "--workers", "1"], cli_env(home))
    return folder


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """Railwatch settings (and other variables, e.g. AWS keys) for one run in this process;
    settings are read once per process, so the cache is cleared on the way in and out."""
    from railwatch.settings import get_settings

    saved = {k: v for k, v in os.environ.items() if k.startswith("RAILWATCH_") or k in settings}
    for key in saved:
        del os.environ[key]
    os.environ.update(settings)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("RAILWATCH_") or k in settings]:
            del os.environ[key]
        os.environ.update(saved)
        get_settings.cache_clear()


@dataclass
class World:
    """One railwatch installation: its home (simulated catalog copied in), settings, and runs."""

    home: Path
    settings: dict[str, str] = field(default_factory=dict)
    noted: str = ""  # the registry's record of the first run that left failed attempts

    @classmethod
    def create(cls, home: Path, simulated: Path, **settings: str) -> World:
        shutil.copytree(simulated, home / "simulator")
        base = {"RAILWATCH_HOME": str(home), "RAILWATCH_AOI_DIR": str(AOI_DIR),
                "RAILWATCH_DASK_CLUSTER_KWARGS": '{"processes": false, "n_workers": 1, '
                                                 '"threads_per_worker": 2}'}
        return cls(home, base | settings)

    @property
    def scenes_dir(self) -> Path:
        return self.home / "simulator" / AOI_ID

    def backfill(self, **request: Any) -> Outcome:
        """The backfill flow over the world's days, run in this process as the CLI runs it."""
        with environment(self.settings):  # first: the tasks read their retry delays on import
            from flows.backfill import BackfillRequest, backfill
            from flows.runner import dask_task_runner
            from railwatch.settings import get_settings

            req = BackfillRequest(start=request.pop("start", WORLD_START), end=request.pop("end", WORLD_END),
                                  aoi_ids=[AOI_ID], **request)
            flow = backfill.with_options(task_runner=dask_task_runner(get_settings()))
            try:
                summary = flow(request=req)
            except Exception as exc:  # the run failed: its reason is the outcome
                self.note_failures()
                return Outcome("failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            self.note_failures()
        return Outcome("completed", summary.processed,
                       tuple((scene, reason) for _, scene, reason in summary.failed),
                       skipped=tuple((item, reason) for _, item, reason in summary.skipped))

    def note_failures(self) -> None:
        """Keep what the registry says about failed attempts (a later success clears the error)."""
        if self.noted:
            return
        touched = [(scene, attempts, error) for scene, (_, attempts, error)
                   in self.registry_or_none().items() if attempts or error]
        self.noted = "; ".join(f"{scene}: {attempts} attempt(s), last error: {error}"
                               for scene, attempts, error in touched[:2])

    def counts(self) -> tuple[Rows, Rows]:
        """Scene and track counts, one tuple per row (ids excluded: they depend on insert order)."""
        from railwatch.adapters.counts import SceneCountRow, TrackCountRow

        def rows(model: Any, keys: tuple[str, ...]) -> Rows:
            with self._db()._session() as session:
                return sorted(tuple(_plain(getattr(r, k)) for k in keys) for r in session.query(model))

        scene = ("aoi_id", "source", "scene_id", "detector_version", "acquired", "occupied_m", "cars",
                 "cars_low", "cars_high", "valid_fraction", "shift_dx_m", "shift_dy_m", "flags",
                 "image_key", "mask_key")
        track = ("aoi_id", "source", "scene_id", "track_id", "detector_version", "occupied_m", "cars",
                 "cars_low", "cars_high", "valid_fraction", "segments")
        return rows(SceneCountRow, scene), rows(TrackCountRow, track)

    def registry_or_none(self) -> dict[str, tuple[str, int, str | None]]:
        """The registry, or nothing when the database does not exist or cannot be opened."""
        try:
            return self.registry()
        except Exception:  # a bad database URL is one of the faults
            return {}

    def registry(self) -> dict[str, tuple[str, int, str | None]]:
        """scene id → (status, attempts, last error)."""
        return {r.scene_id: (r.status, r.attempts, r.last_error) for r in self._db().scene_rows(AOI_ID)}

    def _db(self) -> Any:
        from railwatch.adapters.counts import CountsStore

        with environment(self.settings):
            from railwatch.settings import get_settings

            return CountsStore(get_settings().db_url)

    def store_audit(self) -> tuple[list[str], list[str]]:
        """(every data object's key, the keys that are partial: temporary names or content that
        does not match the SHA-256 the store recorded). Data objects are what counts are made
        of (clips, items, profiles, reference, background model); quicklooks and reports are
        evidence of alerts, which a run under a fault may raise on other days."""
        from railwatch.adapters.store import open_store
        from railwatch.errors import ConfigError
        from railwatch.settings import get_settings

        with environment(self.settings):
            try:
                store = open_store(get_settings().store_url)
            except ConfigError:  # a bad store URL is one of the faults: nothing can be stored
                return [], []
            keys = sorted(k for k in store.list() if not k.endswith((".png", ".html", ".md")))
            partial = []
            for key in keys:
                info = store.info(key)
                if key.endswith(".part") or info is None or (
                        info.sha256 and info.sha256 != hashlib.sha256(store.get_bytes(key)).hexdigest()):
                    partial.append(key)
        return keys, partial


def _plain(value: Any) -> Any:
    """Values compared exactly, floats to the precision a database keeps them."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return repr(value)
    return value


def compare(clean: tuple[Rows, Rows], got: tuple[Rows, Rows]) -> Diff:
    """Row-by-row: a clean row whose key is missing is lost; a key present more often than in the
    clean run, or not at all in it, is duplicated; same key, other values is changed."""
    lost = duplicated = changed = rows = 0
    for want, have, key_len in ((clean[0], got[0], 4), (clean[1], got[1], 5)):
        rows += len(have)
        want_by = _by_key(want, key_len)
        have_by = _by_key(have, key_len)
        for key, values in want_by.items():
            mine = have_by.get(key, [])
            lost += max(0, len(values) - len(mine))
            changed += sum(a != b for a, b in zip(values, mine, strict=False))
        for key, values in have_by.items():
            duplicated += max(0, len(values) - len(want_by.get(key, [])))
    return Diff(rows, lost, duplicated, changed)


def _by_key(rows: Rows, key_len: int) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    grouped: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[:key_len], []).append(row)
    return grouped


@dataclass(frozen=True)
class FaultRow:
    """One line of the fault table: what was injected, how the run under it ended, how the rerun
    after the fault cleared ended, and the checks against a clean run."""

    layer: str
    fault: str
    during: Outcome
    after: Outcome
    diff: Diff
    objects_missing: int
    objects_extra: int
    partial: int
    registry: str  # attempts and last error of the scenes the fault touched

    @property
    def clear_state(self) -> bool:
        """The run under the fault ended completed, or failed with a reason."""
        if self.during.state == "failed":
            return bool(self.during.error)
        return self.during.state == "completed" and all(reason for _, reason in self.during.failed)

    @property
    def recovered(self) -> bool:
        return (self.clear_state and self.after.state == "completed" and not self.after.failed
                and self.diff.exact and self.partial == 0
                and self.objects_missing == 0 and self.objects_extra == 0)


@dataclass
class Baseline:
    """A clean run's counts and store keys: what every faulted world must converge to."""

    counts: tuple[Rows, Rows]
    keys: list[str]


def judge(layer: str, fault: str, baseline: Baseline, world: World, during: Outcome,
          after: Outcome) -> FaultRow:
    """The row of a fault whose world has been run under the fault (`during`) and again after it
    cleared (`after`)."""
    keys, partial = world.store_audit()
    return FaultRow(layer, fault, during, after, compare(baseline.counts, world.counts()),
                    len(set(baseline.keys) - set(keys)), len(set(keys) - set(baseline.keys)),
                    len(partial), world.noted or "no failed attempt")
