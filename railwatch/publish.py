"""After counts are stored: alert episodes, quicklooks of the scenes they point at, and the
outbox of transitions (for Prefect events and webhooks). No Prefect here, so the tests and the
CLI can run it as the flows do.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import CountsStore, SceneCountRow, TrackCountRow
from railwatch.adapters.store import ObjectStore
from railwatch.alerts import (
    alert_records,
    as_link,
    episode_id,
    episodes_of,
    quicklook_key,
    series_flags,
    transition_key,
    transition_records,
)
from railwatch.aoi import AOI
from railwatch.core.episodes import Episode
from railwatch.errors import RailwatchError
from railwatch.grid import AOIGrid
from railwatch.quicklook import render_quicklook
from railwatch.report import plot_counts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertUpdate:
    """What one run found for an AOI: its stored series, its episodes, the new transitions."""

    rows: list[SceneCountRow]
    episodes: int
    open_episodes: int
    new: list[dict[str, Any]]


def scene_links(store: ObjectStore, quicklooks: set[str]) -> Any:
    """Links of a scene in a webhook body: its clip, mask and (when rendered) quicklook."""
    def links(row: SceneCountRow) -> dict[str, str | None]:
        ql = quicklook_key(row.image_key)
        return {"clip": as_link(store.uri(row.image_key)), "mask": as_link(store.uri(row.mask_key)),
                "quicklook": as_link(store.uri(ql)) if ql in quicklooks else None}
    return links


def ensure_quicklooks(aoi: AOI, grid: AOIGrid, store: ObjectStore, rows: Sequence[SceneCountRow],
                      tracks_of: Callable[[SceneCountRow], Sequence[TrackCountRow]]) -> set[str]:
    """Render the quicklook of each scene (once: an existing one is kept, its track counts
    `tracks_of` it are not asked for); the keys that exist. A scene whose clip is missing or
    unreadable gets none (a warning)."""
    done = set()
    for row in rows:
        key = quicklook_key(row.image_key)
        if store.info(key) is None:
            if store.info(row.image_key) is None:
                log.warning("%s: no clip at %s, no quicklook", aoi.id, row.image_key)
                continue
            try:
                png = render_quicklook(aoi, grid, row, tracks_of(row), store)
            except RailwatchError as exc:
                log.warning("%s: quicklook of %s failed: %s", aoi.id, row.scene_id, exc)
                continue
            store.put_bytes(key, png)
        done.add(key)
    return done


def quicklooks_to_render(aoi: AOI, db: CountsStore, alerts: AlertStore, store: ObjectStore,
                         detector_version: str) -> list[tuple[SceneCountRow, list[TrackCountRow]]]:
    """The scenes of the AOI's new alert transitions that have no quicklook yet, each with its
    track counts: what a worker needs to render them ahead of `update_alerts`."""
    rows = new_transitions(aoi, db, alerts, detector_version).scenes()
    return [(r, db.track_counts(aoi.id, r.scene_id, r.detector_version)) for r in rows
            if store.info(quicklook_key(r.image_key)) is None]


@dataclass(frozen=True)
class Transitions:
    """An AOI's stored series, its episodes, and its transitions not recorded yet (key -> scene)."""

    rows: list[SceneCountRow]
    episodes: list[Episode]
    new: dict[str, str]

    def scenes(self) -> list[SceneCountRow]:
        """The scenes the new transitions point at (their quicklooks go with them)."""
        wanted = set(self.new.values())
        return [r for r in self.rows if r.scene_id in wanted]


def new_transitions(aoi: AOI, db: CountsStore, alerts: AlertStore, detector_version: str) -> Transitions:
    """The AOI's episodes, recomputed from its stored counts, and which of their transitions
    are not recorded yet."""
    rows = db.scene_counts(aoi.id, detector_version)
    episodes = episodes_of(aoi, rows)
    keys = {transition_key(detector_version, episode_id(aoi.id, e), t): t.scene_id
            for e in episodes for t in e.transitions}
    known = alerts.known_keys(list(keys))
    return Transitions(rows, episodes, {k: v for k, v in keys.items() if k not in known})


def update_alerts(aoi: AOI, grid: AOIGrid, db: CountsStore, alerts: AlertStore, store: ObjectStore,
                  detector_version: str, urls: Sequence[str],
                  send_since: datetime | None = None) -> AlertUpdate:
    """Recompute the AOI's episodes, store them, and queue the transitions not seen before
    (those of scenes acquired before `send_since` are recorded, not sent)."""
    found = new_transitions(aoi, db, alerts, detector_version)
    rows, episodes = found.rows, found.episodes
    quicklooks = ensure_quicklooks(aoi, grid, store, found.scenes(), lambda r: db.track_counts(
        aoi.id, r.scene_id, r.detector_version))
    new = transition_records(aoi, detector_version, rows, episodes, scene_links(store, quicklooks),
                             set(found.new))
    alerts.sync_alerts(aoi.id, detector_version, alert_records(aoi, rows, episodes))
    alerts.add_transitions(new, urls, send_since)
    return AlertUpdate(rows, len(episodes), sum(e.is_open for e in episodes), new)


def store_series_plot(aoi: AOI, rows: Sequence[SceneCountRow], alerts: AlertStore, store: ObjectStore,
                      detector_version: str) -> str:
    """The AOI's cars-over-time plot (surges and alert episodes marked) written to the store;
    its key (the same key every run: the newest plot replaces the last)."""
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_counts(aoi, rows, Path(tmp) / "cars.png", series_flags(aoi, rows),
                          alerts.alerts(aoi.id, detector_version))
        key = f"{aoi.id}/reports/cars.png"
        store.put_bytes(key, png.read_bytes())
    return key
