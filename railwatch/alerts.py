"""From stored counts to alert episodes, their transitions and the webhook body of each.

The episode logic is pure (railwatch.core.episodes); this module maps stored rows onto it and
freezes what each transition says (the body a receiver gets), keyed so that reruns, retries
and backfills always produce the same idempotency key for the same surge event.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path, PurePosixPath
from typing import Any

from railwatch.adapters.counts import CountsStore, SceneCountRow, TrackPoint
from railwatch.aoi import AOI
from railwatch.core.episodes import Episode, ScenePoint, Transition, is_reliable, surge_episodes
from railwatch.core.surge import SurgeFlag, SurgeParams, flag_surges
from railwatch.errors import AOIError

EVENT_PREFIX = "railwatch.surge"

Links = Callable[[SceneCountRow], dict[str, str | None]]


def surge_params(aoi: AOI) -> SurgeParams:
    """The AOI's thresholds (its `surge` property overrides the defaults); AOIError naming the
    known keys for one that is not a threshold."""
    surge = aoi.prop("surge", {})
    known = [f.name for f in fields(SurgeParams)]
    unknown = sorted(set(surge) - set(known))
    if unknown:
        raise AOIError(f"{aoi.source}: feature (aoi {aoi.id}): surge has unknown key(s) "
                       f"{', '.join(unknown)}; known: {', '.join(known)}")
    return SurgeParams(**surge)


def series_flags(aoi: AOI, rows: Sequence[SceneCountRow]) -> list[SurgeFlag]:
    """The surge test over an AOI's whole stored series (each scene against earlier ones)."""
    return flag_surges([r.acquired for r in rows], [r.cars for r in rows],
                       [r.valid_fraction for r in rows], aoi.prop("history_max_cars"), surge_params(aoi),
                       lows=[r.cars_low for r in rows])


def track_flags(aoi: AOI, rows: Sequence[TrackPoint]) -> dict[tuple[str, str], SurgeFlag]:
    """The same surge test per track, each track against its own history (a siding filling up
    while the others empty moves no total), its intervals' low ends included as for the scene
    (`series_flags`). Keyed by (scene id, track id)."""
    by_track: dict[str, list[TrackPoint]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.acquired, r.scene_id)):
        by_track[r.track_id].append(r)
    params = surge_params(aoi)
    return {(r.scene_id, track): flag
            for track, series in by_track.items()
            for r, flag in zip(series, flag_surges([r.acquired for r in series], [r.cars for r in series],
                                                   [r.valid_fraction for r in series], None, params,
                                                   lows=[r.cars_low for r in series]),
                               strict=True)}


def flag_stored_series(aoi: AOI, db: CountsStore, detector_version: str) -> list[str]:
    """Recompute and store the surge flags of an AOI's series and of each of its tracks; the
    flagged scene ids."""
    series = db.scene_counts(aoi.id, detector_version)
    flags = series_flags(aoi, series)
    db.set_surge_flags(aoi.id, detector_version, {
        r.scene_id: (f.surge, f.ratio, f.baseline) for r, f in zip(series, flags, strict=True)
    })
    per_track = track_flags(aoi, db.track_points(aoi.id, detector_version))
    db.set_track_surge_flags(aoi.id, detector_version,
                             {k: (f.surge, f.ratio, f.baseline) for k, f in per_track.items()})
    return [r.scene_id for r, f in zip(series, flags, strict=True) if f.surge]


def scene_points(rows: Sequence[SceneCountRow], params: SurgeParams) -> list[ScenePoint]:
    return [ScenePoint(r.scene_id, r.acquired, r.cars, r.surge,
                       is_reliable(r.valid_fraction, r.flags.split(","), params.min_valid_fraction))
            for r in rows]


def episodes_of(aoi: AOI, rows: Sequence[SceneCountRow]) -> list[Episode]:
    """The AOI's surge episodes from its stored, flagged series (oldest first)."""
    params = surge_params(aoi)
    return surge_episodes(scene_points(rows, params), params.close_after, params.update_min_growth)


def episode_id(aoi_id: str, episode: Episode) -> str:
    return f"{aoi_id}/{episode.opened_scene_id}"


def transition_key(detector_version: str, episode: str, t: Transition) -> str:
    """The idempotency key: the same surge event always gets the same key."""
    text = f"{detector_version}|{episode}|{t.kind}|{t.scene_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def quicklook_key(image_key: str) -> str:
    """Where the quicklook PNG of a clip lives: beside its image."""
    return str(PurePosixPath(image_key).with_name("quicklook.png"))


def as_link(uri: str) -> str:
    """A clickable URI: local paths become file:// URIs, store URIs stay as they are."""
    return Path(uri).as_uri() if uri.startswith("/") else uri


def alert_records(aoi: AOI, rows: Sequence[SceneCountRow], episodes: Sequence[Episode]
                  ) -> list[dict[str, Any]]:
    """One `alerts` row per episode."""
    by_id = {r.scene_id: r for r in rows}
    out = []
    for e in episodes:
        peak = by_id[e.peak_scene_id]
        last = max(t.at for t in e.transitions if t.kind != "closed")
        out.append({
            "episode_id": episode_id(aoi.id, e), "status": "open" if e.is_open else "closed",
            "opened_at": e.opened_at, "updated_at": last, "closed_at": e.closed_at,
            "peak_scene_id": peak.scene_id, "peak_cars": peak.cars, "peak_cars_low": peak.cars_low,
            "peak_cars_high": peak.cars_high, "ratio": peak.surge_ratio,
            "baseline_cars": by_id[e.opened_scene_id].baseline_cars, "scene_ids": list(e.scene_ids),
        })
    return out


def scene_payload(row: SceneCountRow, links: Links) -> dict[str, Any]:
    return {
        "source": row.source, "scene_id": row.scene_id, "acquired": row.acquired.isoformat(),
        "cars": row.cars, "cars_low": row.cars_low, "cars_high": row.cars_high,
        "occupied_m": round(row.occupied_m, 1), "valid_fraction": round(row.valid_fraction, 3),
        "baseline_cars": row.baseline_cars, "ratio": row.surge_ratio, "flags": row.flags,
        "links": links(row),
    }


def transition_records(aoi: AOI, detector_version: str, rows: Sequence[SceneCountRow],
                       episodes: Sequence[Episode], links: Links,
                       keys: set[str] | None = None) -> list[dict[str, Any]]:
    """`alert_transitions` rows with their frozen webhook bodies (only `keys`, when given)."""
    by_id = {r.scene_id: r for r in rows}
    out = []
    for e in episodes:
        eid = episode_id(aoi.id, e)
        for i, t in enumerate(e.transitions):
            key = transition_key(detector_version, eid, t)
            if keys is not None and key not in keys:
                continue
            peak = max((by_id[s] for s in e.scene_ids if by_id[s].acquired <= t.at),
                       key=lambda r: r.cars)
            body = {
                "event": f"{EVENT_PREFIX}.{t.kind}", "idempotency_key": key,
                "aoi": {"id": aoi.id, "name": aoi.label,
                        "history_max_cars": aoi.prop("history_max_cars")},
                "episode": {"id": eid, "opened_at": e.opened_at.isoformat(), "sequence": i,
                            "peak_cars": peak.cars, "peak_scene_id": peak.scene_id,
                            "scene_ids": [s for s in e.scene_ids if by_id[s].acquired <= t.at]},
                "date": f"{t.at:%Y-%m-%d}",
                "scene": scene_payload(by_id[t.scene_id], links),
                "detector_version": detector_version,
                "summary": summary_line(aoi, t.kind, by_id[t.scene_id], peak),
            }
            out.append({"key": key, "aoi_id": aoi.id, "detector_version": detector_version,
                        "episode_id": eid, "kind": t.kind, "scene_id": t.scene_id, "at": t.at,
                        "body": json.dumps(body, sort_keys=True, separators=(",", ":"))})
    return out


def summary_line(aoi: AOI, kind: str, scene: SceneCountRow, peak: SceneCountRow) -> str:
    """One sentence a person reads in a chat message or an e-mail subject."""
    ratio = f", {peak.surge_ratio:.1f}× the historical maximum" if peak.surge_ratio else ""
    if kind == "closed":
        return (f"{aoi.label}: surge over on {scene.acquired:%Y-%m-%d} ({scene.cars} cars; "
                f"peak {peak.cars} on {peak.acquired:%Y-%m-%d})")
    verb = "surge" if kind == "opened" else "surge grows"
    return f"{aoi.label}: {verb}, {scene.cars} cars on {scene.acquired:%Y-%m-%d}{ratio}"
