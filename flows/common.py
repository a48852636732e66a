"""The composition every railwatch flow shares: search → clip → reference → measure →
background model → detect → store, then publish.

Heavy steps go to the Dask task runner in packs of AOI-scenes across AOIs (`flows.batching`):
each Dask task carries real work (Prefect and Dask cost ≈75 ms per task), and the number of task
runs follows the work, not AOIs × date chunks. Bookkeeping and the registry stay in the flow.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dask.base import annotate
from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed, wait

from flows.batching import pack
from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.catalog import open_catalog
from railwatch.adapters.catalogs import Catalog
from railwatch.adapters.counts import CountsStore
from railwatch.adapters.store import ObjectStore, open_store
from railwatch.aoi import AOI, load_registry, select_aois
from railwatch.background import affected_clips, scene_key
from railwatch.core import DETECTOR_VERSION
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.interrupts import interrupted
from railwatch.measure import reference_digest, reference_is_final
from railwatch.models import ClipRef, MeasuredScene, RunSummary, SceneCount, SceneRef
from railwatch.preflight import check_store
from railwatch.progress import report
from railwatch.publish import quicklooks_to_render
from railwatch.search import select_sources
from railwatch.settings import Settings, get_settings
from tasks.batch import PackedCalls, run_batch
from tasks.common import FailedScene
from tasks.limits import limited
from tasks.publish import publish_run_artifacts
from tasks.search import prepare_scenes

Submitted = list[tuple[list[str], PrefectFuture[list[Any]]]]
AHEAD = -1  # Dask priority of the next window's clips: they fill the gaps this window leaves
BEHIND = -2  # of work nothing waits for until the run publishes: done when workers have nothing else


@dataclass
class Run:
    """What one flow run works on: settings, AOIs and their grids, the registry, the catalogs."""

    settings: Settings
    aois: dict[str, AOI]
    grids: dict[str, AOIGrid]
    db: CountsStore
    catalogs: list[Catalog]
    # quicklook batches submitted before publishing (a backfill's, chunk by chunk), and their
    # (AOI id, scene id): each scene's is submitted once
    rendering: Submitted = field(default_factory=list)
    rendered: set[tuple[str, str]] = field(default_factory=set)
    # every batch submitted that the flow still holds (gathered or not): what `settled` waits for
    batches: weakref.WeakSet[PrefectFuture[list[Any]]] = field(default_factory=weakref.WeakSet)

    @property
    def store_url(self) -> str:
        return self.settings.store_url


def open_run(aoi_ids: Sequence[str] | None, sources: Sequence[str] | None = None) -> Run:
    """The run's AOIs (all by default) and catalogs: the configured sources, or those of the
    given kinds (sim, stac, planet) or source strings."""
    settings = get_settings()
    chosen = select_sources(settings.catalogs, sources or [])  # the same choice as `railwatch search`
    aois = select_aois(load_registry(settings.aoi_dir, settings.max_aoi_km2), aoi_ids)
    check_store(settings)
    return Run(settings=settings, aois={a.id: a for a in aois},
               grids={a.id: aoi_grid(a, gsd_m=a.gsd_m, buffer_m=settings.clip_buffer_m)
                      for a in aois},
               db=CountsStore(settings.db_url),
               catalogs=[limited(s, open_catalog(s, settings.simulator_dir, settings.asset_maps))
                         for s in chosen])


def submit(run: Run, step: str, work: Mapping[str, Sequence[Any]],
           args: Callable[[str, list[Any]], tuple[Any, ...]], after: Submitted | None = None,
           per_worker: int = 2, priority: int = 0) -> Submitted:
    """One batch task per pack of the work; `args` makes a call's arguments from (AOI id, items).
    Steps that run once per AOI are lighter: one pack per worker (`per_worker=1`). A pack waits
    for the batches of `after` that hold one of its AOIs, not for all of them. Dask runs queued
    tasks of a higher `priority` first (`AHEAD`: work done ahead, while the workers would idle)."""
    out: Submitted = []
    with annotate(priority=priority):  # read by the Dask client when the task is submitted
        for p in pack(work, run.settings.batch_size, run.settings.dask_workers, per_worker):
            ids = [a for a, _ in p]
            needs = [f for done, f in after or [] if set(done) & set(ids)]
            calls = PackedCalls([args(a, items) for a, items in p])
            future = run_batch.submit(step, calls, wait_for=needs, return_state=False)
            run.batches.add(future)
            out.append((ids, future))
    return out


@contextmanager
def settled(batches: Iterable[PrefectFuture[Any]]) -> Iterator[None]:
    """A run that fails ends once its batches have: none is left running behind it (retrying,
    writing clips) to meet the rerun that follows, or, where flows share a process, the next
    run's settings. Ctrl-C stops the run at once: it is no Exception, and where a library turned
    it into one (`railwatch.interrupts`) the batches are not waited for either, since the same
    Ctrl-C stopped their Dask workers (they would never finish)."""
    try:
        yield
    except Exception:
        if not interrupted():
            wait(list(batches))
        raise


def log_totals(summary: RunSummary) -> None:
    """The run's one line of totals (the backfill's and the watch's alike)."""
    get_run_logger().info(
        "found %d scene(s): %d new, %d new version(s), %d already done; %d processed, %d failed",
        summary.found, summary.discovered, summary.revised, summary.skipped_done,
        summary.processed, len(summary.failed))


def gather(stage: str, submitted: Submitted, run: Run, summary: RunSummary) -> list[tuple[str, Any]]:
    """(AOI id, result) pairs as batches complete (list results flattened), with progress;
    failed scenes are recorded in the registry and the summary."""
    keys = {id(future): aoi_ids for aoi_ids, future in submitted}
    out: list[tuple[str, Any]] = []
    report(stage, 0, len(submitted))
    for done, future in enumerate(as_completed([f for _, f in submitted]), start=1):
        for aoi_id, result in zip(keys[id(future)], future.result(), strict=True):
            out.extend((aoi_id, r) for r in (result if isinstance(result, list) else [result]))
        report(stage, done, len(submitted))
    for _, item in out:
        if isinstance(item, FailedScene):
            record_failure(run, summary, item)
    return out


def record_failure(run: Run, summary: RunSummary, failure: FailedScene) -> None:
    summary.failed.append((failure.aoi_id, failure.scene_id, failure.reason))
    run.db.mark_scene(failure.aoi_id, failure.source, failure.scene_id, "failed", error=failure.reason)


def by_aoi(pairs: Sequence[tuple[str, Any]], kind: type) -> dict[str, list[Any]]:
    """The results of one kind, grouped by AOI (in AOI order of first appearance)."""
    grouped: dict[str, list[Any]] = {}
    for aoi_id, item in pairs:
        if isinstance(item, kind):
            grouped.setdefault(aoi_id, []).append(item)
    return grouped


def search(run: Run, start: datetime, end: datetime, force: bool, watch: bool,
           summary: RunSummary) -> dict[str, list[SceneRef]]:
    """Register what the catalogs list in [start, end); the scenes of each AOI still to process."""
    overlap = timedelta(hours=run.settings.poll_overlap_hours) if watch else None
    found = run_batch("discover-scenes", [(a, run.catalogs, run.db, start, end, overlap)
                                          for a in run.aois.values()])
    todo: dict[str, list[SceneRef]] = {}
    for aoi, discovery in zip(run.aois.values(), found, strict=True):
        summary.found += discovery.found
        summary.discovered += len(discovery.new)
        summary.revised += len(discovery.revised)
        summary.skipped += [(aoi.id, item, reason) for _, item, reason in discovery.skipped]
        pending = run.db.pending_scenes(aoi.id, None if watch else start, None if watch else end,
                                        max_attempts=run.settings.max_attempts, include_done=force)
        ready, not_ready = prepare_scenes(aoi, pending, run.catalogs)
        if ready:
            todo[aoi.id] = ready
        for failure in not_ready:
            record_failure(run, summary, failure)
        waiting = {(s.source, s.scene_id) for s in pending}
        summary.skipped_done += sum((s.source, s.scene_id) not in waiting for s in discovery.scenes)
    return todo


def timed(summary: RunSummary, stage: str, started: float) -> float:
    summary.seconds[stage] = summary.seconds.get(stage, 0.0) + time.perf_counter() - started
    return time.perf_counter()


def worked(summary: RunSummary, stage: str, items: Sequence[Any]) -> None:
    summary.scene_seconds[stage] = summary.scene_seconds.get(stage, 0.0) + sum(i.seconds for i in items)


def start_window(run: Run, start: datetime, end: datetime, summary: RunSummary,
                 force: bool = False, watch: bool = False, priority: int = 0) -> Submitted:
    """Search a window and submit its clips (the batches under way); `finish_window` does the
    rest. A backfill starts the next window while one is measured, detected and stored, at a
    lower `priority`: the workers clip ahead whenever the flow's own steps hold them up."""
    started = time.perf_counter()
    todo = search(run, start, end, force, watch, summary)
    timed(summary, "search", started)
    aois, grids, url = run.aois, run.grids, run.store_url
    # measured as they are clipped: the AOIs whose reference these scenes cannot change
    final = {a for a, scenes in todo.items() if reference_is_final(run.db.clipped_scenes(a), scenes)}
    return submit(run, "clip-scenes", todo, lambda a, s: (aois[a], grids[a], s, url, a in final),
                  priority=priority)


def process_window(run: Run, start: datetime, end: datetime, summary: RunSummary,
                   force: bool = False, watch: bool = False) -> None:
    """Process every scene over the run's AOIs acquired in [start, end) that is not done yet;
    each stage's outcome is written to the scene registry (a rerun resumes from it).

    A `watch` searches only past each (AOI, source) mark and processes every registered scene
    not done yet, whenever acquired; a backfill processes what is pending in its window.
    """
    finish_window(run, start_window(run, start, end, summary, force, watch), summary)


def finish_window(run: Run, clipping: Submitted, summary: RunSummary) -> None:
    """Gather a window's clips, then reference → measure → background model → detect → store."""
    started = time.perf_counter()
    aois, grids, url, db = run.aois, run.grids, run.store_url, run.db

    clip_pairs = gather("clip", clipping, run, summary)
    clips = by_aoi([(a, r.clip if isinstance(r, MeasuredScene) else r) for a, r in clip_pairs], ClipRef)
    ahead = by_aoi(clip_pairs, MeasuredScene)  # measured as they were clipped
    db.mark_scenes("clipped", clips=[c for cs in clips.values() for c in cs])
    worked(summary, "clip", [c for cs in clips.values() for c in cs])
    started = timed(summary, "clip", started)
    # one writer per AOI: its clips' STAC collection, its reference
    once = {a: [a] for a in clips}
    indexing = submit(run, "index-clips", once, lambda a, _: (aois[a], grids[a], url), per_worker=1)
    building = submit(run, "build-reference", once,  # independent of the index: no wait between
                      lambda a, _: (aois[a], grids[a], db.clipped_scenes(a), url), per_worker=1)
    gather("reference", indexing, run, summary)
    references = dict(gather("reference", building, run, summary))
    # the clip collections and references: built until an AOI has its first clear scenes
    started = timed(summary, "reference", started)

    kept = still_current(ahead, open_store(url))
    done = {(a, scene_key(m.clip)) for a, m in kept}
    to_measure = {a: [c for c in measure_list(a, clips[a], references[a], db)
                      if (a, scene_key(c)) not in done] for a in clips if references[a] != "none"}
    measuring = submit(run, "measure-clips", to_measure, lambda a, c: (aois[a], grids[a], c, url))
    measured = by_aoi(kept + gather("measure", measuring, run, summary), MeasuredScene)
    summary.measured_with_clip += len(kept)
    db.mark_scenes("measured", clips=[m.clip for ms in measured.values() for m in ms])
    worked(summary, "measure", [m for ms in measured.values() for m in ms])
    started = timed(summary, "measure", started)

    history = {a: db.measured_clips(a) for a in measured}
    new = {a: [m.clip for m in ms] for a, ms in measured.items()}
    # one writer per AOI: its model is updated by one call, and only read by its detections
    models = submit(run, "update-background", {a: [a] for a in new},
                    lambda a, _: (aois[a], new[a], history[a], url), per_worker=1)
    targets = {a: affected_clips(new[a], history[a]) for a in new}
    counts = gather("detect", submit(run, "detect-aoi", targets,
                                     lambda a, t: (aois[a], grids[a], t, history[a], url),
                                     after=models), run, summary)
    worked(summary, "detect", [c for _, c in counts])
    started = timed(summary, "detect", started)

    per_aoi = by_aoi(counts, SceneCount)
    stored = run_batch("store-counts", [(aois[a], per_aoi[a], db, DETECTOR_VERSION) for a in per_aoi])
    for a, flagged in zip(per_aoi, stored, strict=True):
        summary.flagged.extend((a, s) for s in flagged)
    fresh = {(c.scene.source, c.scene.scene_id) for cs in clips.values() for c in cs}  # this run's
    summary.processed += sum((c.source, c.scene_id) in fresh for _, c in counts)
    summary.redetected += sum((c.source, c.scene_id) not in fresh for _, c in counts)
    timed(summary, "store", started)


def still_current(ahead: dict[str, list[MeasuredScene]], store: ObjectStore
                  ) -> list[tuple[str, MeasuredScene]]:
    """Of the measurements made as the clips were made, those against the reference now in
    place, as (AOI id, measurement); any other clip is measured again."""
    digests = {a: reference_digest(store, a) for a in ahead}
    return [(a, m) for a, ms in ahead.items() for m in ms if digests[a] and m.reference_id == digests[a]]


def measure_list(aoi_id: str, clips: list[ClipRef], reference: str, db: CountsStore) -> list[ClipRef]:
    """The clips to measure: this run's; and when the reference was just rebuilt, every clip of
    the AOI measured against the one it replaces."""
    if reference != "built":
        return clips
    mine = {(c.scene.source, c.scene.scene_id) for c in clips}
    return clips + [c for c in db.measured_clips(aoi_id) if (c.scene.source, c.scene.scene_id) not in mine]


def render_quicklooks(run: Run, priority: int = 0) -> None:
    """Submit the quicklooks of the AOIs' new alert transitions not rendered or submitted yet
    (≈ 50 ms each, on the workers) into `run.rendering`."""
    alerts, store = AlertStore(run.db), open_store(run.store_url)
    scenes = {a: [(row, tracks) for row, tracks in
                  quicklooks_to_render(aoi, run.db, alerts, store, DETECTOR_VERSION)
                  if (a, row.scene_id) not in run.rendered] for a, aoi in run.aois.items()}
    run.rendered.update((a, row.scene_id) for a, s in scenes.items() for row, _ in s)
    run.rendering += submit(run, "render-quicklooks", {a: s for a, s in scenes.items() if s},
                            lambda a, s: (run.aois[a], run.grids[a], s, run.store_url), priority=priority)


def publish(run: Run, summary: RunSummary) -> None:
    """Alerts, events, webhooks and the run's artifacts, for every selected AOI (failed webhooks
    are retried even when an AOI had nothing new)."""
    started = time.perf_counter()
    # the quicklooks of new alert transitions on the workers first (those rendered ahead too)
    render_quicklooks(run)
    gather("publish", run.rendering, run, summary)
    run.rendering = []
    published = run_batch("publish-alerts", [(a, run.db, run.store_url, DETECTOR_VERSION)
                                             for a in run.aois.values()])
    publish_run_artifacts(published, run.settings.webhook_urls)
    timed(summary, "publish", started)


def process_range(aoi_ids: Sequence[str] | None, start: datetime, end: datetime,
                  force: bool = False, watch: bool = False) -> RunSummary:
    """One window, then publish: what a watch run does."""
    run = open_run(aoi_ids)
    summary = RunSummary(aois=list(run.aois))
    with settled(run.batches):
        process_window(run, start, end, summary, force=force, watch=watch)
        log_totals(summary)
        publish(run, summary)
    report("done", 1, 1)
    return summary
