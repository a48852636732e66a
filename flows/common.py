"""The composition every railwatch flow shares: search → clip → reference → measure →
background model → detect → store.

Heavy steps are submitted to the Dask task runner in batches of AOI-scenes (each Dask task
carries real work; Prefect and Dask cost ≈75 ms per task); light bookkeeping runs in the flow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect_dask.task_runners import DaskTaskRunner

from railwatch.adapters.catalog import open_catalog
from railwatch.adapters.counts import CountsStore
from railwatch.aoi import AOI, load_registry, select_aois
from railwatch.core import DETECTOR_VERSION
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.models import ClipRef, MeasuredScene, RunSummary, SceneCount, SceneRef
from railwatch.progress import report
from railwatch.settings import Settings, get_settings
from tasks.common import FailedScene
from tasks.ingest import clip_scenes, index_clips
from tasks.measure import build_reference, detect_aoi, measure_clips, update_background
from tasks.publish import publish_alerts, publish_run_artifacts
from tasks.search import discover_scenes, prepare_scenes
from tasks.store import store_counts

T = TypeVar("T")


def dask_task_runner(settings: Settings | None = None) -> Any:
    """An external Dask scheduler if configured, else a LocalCluster of worker processes."""
    settings = settings or get_settings()
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": settings.dask_workers, "threads_per_worker": 1,
                        "processes": True, "dashboard_address": None},
    )


def chunks(items: Sequence[T], size: int, workers: int) -> list[list[T]]:
    """Batches of at most `size`, but at least two per worker when there is enough work."""
    size = max(1, min(size, math.ceil(len(items) / (2 * workers))))
    return [list(items[i: i + size]) for i in range(0, len(items), size)]


def grid_for(aoi: AOI, settings: Settings) -> AOIGrid:
    return aoi_grid(aoi, gsd_m=float(aoi.prop("gsd_m", 3.0)), buffer_m=settings.clip_buffer_m)


def gather(stage: str, futures: list[PrefectFuture[list[Any]]], db: CountsStore,
           summary: RunSummary) -> list[Any]:
    """Results of batch futures as they complete, with progress; failed scenes are recorded."""
    out: list[Any] = []
    report(stage, 0, len(futures))
    for done, future in enumerate(as_completed(futures), start=1):
        out.extend(future.result())
        report(stage, done, len(futures))
    for item in out:
        if isinstance(item, FailedScene):
            summary.failed.append((item.aoi_id, item.scene_id, item.reason))
            db.mark_scene(item.aoi_id, item.source, item.scene_id, "failed", error=item.reason)
    return out


def process_range(aoi_ids: Sequence[str] | None, start: datetime, end: datetime,
                  force: bool = False, watch: bool = False) -> RunSummary:
    """Process every scene over the AOIs acquired in [start, end) that is not done yet.

    A `watch` searches only past each (AOI, source) mark and processes every registered scene
    not done yet, whenever acquired; a backfill processes what is pending in its range.
    """
    logger = get_run_logger()
    settings = get_settings()
    aois = select_aois(load_registry(settings.aoi_dir, settings.max_aoi_km2), aoi_ids)
    db = CountsStore(settings.db_url)
    catalogs = [open_catalog(s, settings.simulator_dir, settings.asset_maps) for s in settings.catalogs]
    overlap = timedelta(hours=settings.poll_overlap_hours) if watch else None
    store_url = settings.store_url
    summary = RunSummary(aois=[a.id for a in aois])
    grids = {a.id: grid_for(a, settings) for a in aois}
    by_id = {a.id: a for a in aois}

    started = time.perf_counter()
    todo: dict[str, list[SceneRef]] = {}
    for aoi in aois:
        found = discover_scenes(aoi, catalogs, db, start, end, overlap)
        summary.found += found.found
        summary.discovered += len(found.new)
        summary.revised += len(found.revised)
        pending = db.pending_scenes(aoi.id, None if watch else start, None if watch else end,
                                    max_attempts=settings.max_attempts, include_done=force)
        todo[aoi.id], not_ready = prepare_scenes(aoi, pending, catalogs)
        for failure in not_ready:
            summary.failed.append((failure.aoi_id, failure.scene_id, failure.reason))
            db.mark_scene(failure.aoi_id, failure.source, failure.scene_id, "failed", error=failure.reason)
        waiting = {(s.source, s.scene_id) for s in pending}
        summary.skipped_done += sum((s.source, s.scene_id) not in waiting for s in found.scenes)
    summary.seconds["search"] = time.perf_counter() - started
    logger.info("found %d scene(s): %d new, %d new version(s), %d already done", summary.found,
                summary.discovered, summary.revised, summary.skipped_done)

    started = time.perf_counter()
    clip_futures = [clip_scenes.submit(by_id[a], grids[a], batch, store_url)
                    for a, scenes in todo.items()
                    for batch in chunks(scenes, settings.batch_size, settings.dask_workers)]
    clips = [c for c in gather("clip", clip_futures, db, summary) if isinstance(c, ClipRef)]
    for clip in clips:
        db.mark_scene(clip.aoi_id, clip.scene.source, clip.scene.scene_id, "clipped", clip=clip)
    for a in {c.aoi_id for c in clips}:  # one writer per AOI: the STAC collection of its clips
        index_clips(by_id[a], grids[a], store_url)
    summary.seconds["clip"] = time.perf_counter() - started
    summary.scene_seconds["clip"] = sum(c.seconds for c in clips)

    started = time.perf_counter()
    ready = {a: build_reference.submit(by_id[a], grids[a], [c for c in clips if c.aoi_id == a],
                                       store_url) for a in todo if todo[a]}
    measure_futures = [
        measure_clips.submit(by_id[a], grids[a], batch, store_url)
        for a in ready if ready[a].result()
        for batch in chunks([c for c in clips if c.aoi_id == a], settings.batch_size,
                            settings.dask_workers)
    ]
    measured = [m for m in gather("measure", measure_futures, db, summary) if isinstance(m, MeasuredScene)]
    for m in measured:
        db.mark_scene(m.clip.aoi_id, m.clip.scene.source, m.clip.scene.scene_id, "measured",
                      clip=m.clip)
    summary.seconds["measure"] = time.perf_counter() - started
    summary.scene_seconds["measure"] = sum(m.seconds for m in measured)

    started = time.perf_counter()
    detect_futures: list[PrefectFuture[list[SceneCount]]] = []
    for a in todo:
        history = db.measured_clips(a)
        targets = [m.clip for m in measured if m.clip.aoi_id == a]
        if not targets:
            continue
        # one writer per AOI: its model is updated by one task, and only read by its detections
        model = update_background.submit(by_id[a], targets, history, store_url)
        detect_futures.extend(
            detect_aoi.submit(by_id[a], grids[a], batch, history, store_url, wait_for=[model],
                              return_state=False)
            for batch in chunks(targets, settings.batch_size, settings.dask_workers)
        )
    counts = gather("detect", detect_futures, db, summary)
    summary.seconds["detect"] = time.perf_counter() - started
    summary.scene_seconds["detect"] = sum(c.seconds for c in counts)

    started = time.perf_counter()
    for a in todo:
        flagged = store_counts(by_id[a], [c for c in counts if c.aoi_id == a], db, DETECTOR_VERSION)
        summary.flagged.extend((a, s) for s in flagged)
    summary.processed = len(counts)
    summary.seconds["store"] = time.perf_counter() - started

    started = time.perf_counter()  # every selected AOI: failed webhooks are retried even when idle
    published = [publish_alerts(a, db, store_url, DETECTOR_VERSION) for a in aois]
    publish_run_artifacts(published, settings.webhook_urls)
    summary.seconds["publish"] = time.perf_counter() - started
    report("done", 1, 1)
    return summary
