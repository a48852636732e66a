"""From occupied stretches to counts, intervals, totals and quality flags for one scene."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from railwatch.core.ambiguity import doubtful_cars, far_shadows, shadowed_cars
from railwatch.core.arrivals import arrivals, typical_ballast, typical_spectrum
from railwatch.core.cloudedge import cloud_edge_mask
from railwatch.core.neighbours import (
    explained_mask,
    scene_shadow,
    shadow_reach_m,
)
from railwatch.core.occupancy import (
    TrackScore,
    runs,
    score_tracks,
    segments,
)
from railwatch.core.ownshadow import OwnShadows, own_shadows
from railwatch.core.profiles import sample_track
from railwatch.core.resolved import (
    bridge_gaps,
    count_track,
    gap_signal,
    gap_trains,
    is_resolved,
    minus,
    union,
)
from railwatch.core.selfref import background_from_scene, other_beds
from railwatch.core.types import (
    Alignment,
    BoolArray,
    DetectorParams,
    SceneMeasurement,
    TrackLine,
    TrackMeasurement,
    TrackProfile,
)


def with_positions(
    profiles: Mapping[str, TrackProfile], tracks: Sequence[TrackLine], gsd_m: float
) -> dict[str, TrackProfile]:
    """Profiles with their sample positions filled in from the track lines where missing."""
    lines = {t.id: t for t in tracks}
    out = dict(profiles)
    for k, prof in profiles.items():
        if prof.positions.shape[0] == prof.valid.shape[0] or k not in lines:
            continue
        pos, _, _ = sample_track(lines[k], gsd_m, prof.step_m)
        if pos.shape[0] == prof.valid.shape[0]:
            out[k] = replace(prof, positions=pos)
    return out


def _inside_trains(score: TrackScore, explained: BoolArray, car_pitch_m: float,
                   p: DetectorParams) -> BoolArray:
    """`explained` without the stretches of at most `train_gap_max_cars` pitches between two
    of the track's own changes that stand (evidence the neighbours did not explain) where at
    least `train_gap_min_share` of the samples changed: a dark car between two of the same train
    reads like a neighbour's shadow, and trains stand coupled; a shadow or leak on the empty
    ballast between two cuts of cars is the rarer case."""
    changed = score.usable & (score.z >= p.low_z)
    car = round(car_pitch_m / score.step_m)
    # the train's own parts: a car long at least, seeded by a strong change
    stands = np.zeros_like(changed)
    for a, b in runs(changed & ~explained):
        if b - a >= car and np.max(score.z[a:b]) >= p.high_z:
            stands[a:b] = True
    within = round(p.train_gap_max_cars * car_pitch_m / score.step_m)
    out = explained.copy()
    for a, b in runs(~stands):
        if a == 0 or b == len(stands) or b - a > within or not score.usable[a:b].all():
            continue
        if changed[a:b].mean() >= p.train_gap_min_share:
            out[a:b] = False
    return out


def _hidden_cars(
    usable: BoolArray, segs: list[tuple[float, float]], step: float, pitch: float,
    hidden_rate: float,
) -> float:
    """Cars that may stand where the track could not be seen: a masked stretch touching a
    train may be full of cars; any other masked stretch as full as the visible part, or as a
    loaded yard (`hidden_rate`) if that is more."""
    visible = float(usable.sum()) * step
    occupied = sum(e - s for s, e in segs)
    # the visible part's share, but at least a loaded yard's: what cannot be seen may be full
    rate = max(occupied / visible if visible > 0 else 0.0, hidden_rate)
    hidden = 0.0
    for a, b in runs(~usable):
        s0, s1 = a * step, b * step
        touches = any(abs(e - s0) <= 2 * step or abs(s - s1) <= 2 * step for s, e in segs)
        hidden += (s1 - s0) / pitch * (1.0 if touches else rate)
    return hidden


def _count(
    segs: list[tuple[float, float]], pitch: float, gsd_m: float, p: DetectorParams
) -> tuple[float, float]:
    """(expected cars, variance) from the occupied segments."""
    n = sum((e - s + p.coupler_gap_m) / pitch for s, e in segs)
    end_var = len(segs) * 2.0 * (p.end_sigma_px * gsd_m / pitch) ** 2
    var = end_var + (n * p.pitch_cv) ** 2 + (n * p.model_cv) ** 2 + p.count_sd_floor**2
    return n, var


def _interval(n: float, var: float, hidden: float, p: DetectorParams, doubtful: float = 0.0
              ) -> tuple[int, int, int]:
    """(cars, low, high): a normal interval around n, widened by the cars that may hide under
    the mask (high) and those that may be shadows (low, see ambiguity.py)."""
    cars = round(n)
    half = p.interval_z * math.sqrt(var)
    low = max(0, min(cars, math.ceil(n - half - doubtful)))
    high = max(cars, math.floor(n + half + hidden))
    return cars, low, high


def measure_scene(
    profiles: Mapping[str, TrackProfile],
    background: Mapping[str, TrackProfile] | None,
    gsd_m: float,
    car_pitch_m: float,
    alignment: Alignment | None = None,
    track_lengths_m: Mapping[str, float] | None = None,
    params: DetectorParams | None = None,
    tracks: Sequence[TrackLine] | None = None,
    sun_azimuth_deg: float | None = None,
    sun_elevation_deg: float | None = None,
) -> SceneMeasurement:
    """Occupied metres and car counts per track and in total, with an interval and flags.

    `background` None: estimate the empty yard from the scene itself (flag "no_reference").
    Counts cover the usable part of each track (clear in the image and known in the
    background); `cars_high` also allows for cars that may stand in the masked part.
    `track_lengths_m` overrides the reported lengths (e.g. geodesic); segments stay in the
    profile's metres (the AOI grid, off by the map scale factor only). `tracks` restores the
    sample positions of profiles stored without them (needed to relate neighbouring tracks);
    `sun_azimuth_deg` tells on which side car shadows fall (learnt from the scene otherwise);
    `sun_elevation_deg` how far they reach (a low sun's reach past the next siding).
    """
    p = params or DetectorParams()
    if tracks is not None:
        profiles = with_positions(profiles, tracks, gsd_m)
        if background is not None:
            background = with_positions(background, tracks, gsd_m)
    flags: list[str] = []
    if background is None:
        # the scene's own ballast is a rough background (slow tone changes, misregistered
        # lines): demand more contrast and widen the interval
        p = replace(
            p,
            noise_floor_rel=max(p.noise_floor_rel, p.selfref_noise_floor_rel),
            model_cv=max(p.model_cv, p.selfref_model_cv),
        )
        background = background_from_scene(profiles, p)
        flags.append("no_reference")
    else:
        missing = {
            k: pr for k, pr in profiles.items()
            if k not in background or background[k].values.shape != pr.values.shape
        }
        if missing:
            background = {**background, **background_from_scene(missing, p)}
            flags.append("no_reference")
    gaps = None
    beside = OwnShadows({}, {})
    if is_resolved(gsd_m, p):
        beside = own_shadows(profiles, background, car_pitch_m, p, sun_azimuth_deg, sun_elevation_deg)
        # occupancy is about trains: coupler gaps would read as empty track; cars are
        # counted from the gaps themselves
        bridged = bridge_gaps(profiles, p)
        gaps = gap_signal(profiles, bridged, p)
        profiles, background = bridged, bridge_gaps(background, p)
        # a lone car is counted from its own gaps, however faint (no lone-blip rule); a roof
        # seen whole does not leak into the next siding's corridor (a shadow still may)
        # (faint gaps count only where a real background says the spectra did not change: a
        # neighbour's shadow shows its couplers, and the scene's own ballast takes it in)
        p = replace(p, noise_max_ratio=p.resolved_noise_max_ratio, noise_about_no_change=True,
                    short_max_cars=0.0, neighbour_max_bleed=p.resolved_max_bleed,
                    resolved_faint_chain_gaps=0 if "no_reference" in flags
                    else p.resolved_faint_chain_gaps)
    scores, inv = score_tracks(profiles, background, p)
    evidence = any(bool(np.any(s.z >= p.low_z)) for s in scores.values())
    if "no_reference" not in flags and p.self_check and evidence:
        # a background may itself hold cars (a composite of days when a train stood still):
        # where it stands out from the yard's typical ballast, evidence must also stand out
        # from the scene's own ballast. Elsewhere the background is plain ballast and is
        # trusted (a fully loaded track has no ballast of its own to compare with).
        # (where no background sample stands out, there is nothing to check)
        typical = typical_spectrum(background)
        suspect, _ = score_tracks(background, typical_ballast(background, typical), p)
        if typical is not None and any(bool(np.any(s.z >= p.low_z)) for s in suspect.values()):
            # ... but not a train's own samples: a long train (a grey one above all) would
            # otherwise become its own "ballast" in the running median and hide itself. A
            # stretch of evidence with changes far beyond the ballast's natural texture is left
            # out of the scene's ballast whole, unless a neighbour may have cast or leaked it
            # (a dark train is no shadow where none can fall or where it is darker than any:
            # 3 m bench, dense 5 -> 6/10, bias -26 -> -19 cars; it was "a neighbour changed more")
            raw_shadow = scene_shadow(scores, gsd_m, p, sun_azimuth_deg)
            trains = arrivals(scores, typical, inv, gsd_m, p, sun_elevation_deg, raw_shadow)
            # a track the reference shows on the yard's ballast has that ballast under a
            # train covering most of it, not the train's own tone
            scene_ballast = background_from_scene(profiles, p, trains, other_beds(background, p))
            own, _ = score_tracks(profiles, scene_ballast, p)
            scores = {
                k: replace(s, z=np.where(suspect[k].z >= p.low_z, np.minimum(s.z, own[k].z), s.z))
                if k in own and k in suspect else s
                for k, s in scores.items()
            }
    shadow = scene_shadow(scores, gsd_m, p, sun_azimuth_deg)
    suppressed = explained_mask(scores, inv, gsd_m, p, shadow, sun_elevation_deg)
    suppressed = {k: _inside_trains(scores[k], m, car_pitch_m, p) for k, m in suppressed.items()}
    shadowed = shadowed_cars(scores, suppressed, car_pitch_m, p)
    veiled = cloud_edge_mask(scores, profiles, gsd_m, p, unmasked_shadows="no_reference" not in flags)
    suppressed = {k: m | veiled[k] if k in veiled else m for k, m in suppressed.items()}
    kept = {k: segments(sc, suppressed[k], inv, car_pitch_m, gsd_m, p) for k, sc in scores.items()}
    reach = None if sun_elevation_deg is None else shadow_reach_m(sun_elevation_deg, p)
    dropped = far_shadows(scores, kept, suppressed, gsd_m, p,
                          None if shadow is None else shadow.direction, reach)
    kept = {k: [seg for seg in segs if seg not in dropped.get(k, [])] for k, segs in kept.items()}
    doubtful = doubtful_cars(scores, kept, car_pitch_m, gsd_m, p, reach)
    results: list[TrackMeasurement] = []
    total_n = total_var = total_hidden = 0.0
    resolved_low = resolved_high = 0
    weighted_valid = weighted_covered = total_len = 0.0
    for k, prof in profiles.items():
        length = float(track_lengths_m[k]) if track_lengths_m and k in track_lengths_m else (
            prof.length_m
        )
        score = scores.get(k)
        usable = score.usable if score is not None else np.zeros(prof.valid.shape, dtype=bool)
        segs = kept.get(k, [])
        if gaps is not None and k in gaps and p.resolved_chain_gaps > 0:
            chained = gap_trains(gaps[k], usable, prof.step_m, car_pitch_m, p,
                                 None if score is None else score.z, usable, suppressed.get(k))
            segs = union(segs, chained, p.coupler_gap_m)
        if k in beside.cars:
            segs = union(segs, beside.cars[k], p.coupler_gap_m)
        if k in beside.none:
            segs = minus(segs, beside.none[k], 0.5 * car_pitch_m)
        n, var = _count(segs, car_pitch_m, gsd_m, p)
        hidden = _hidden_cars(usable, segs, prof.step_m, car_pitch_m, p.hidden_occupancy)
        hidden += p.shadow_may_hide * shadowed.get(k, 0.0)
        cars, low, high = _interval(n, var, hidden, p, doubtful.get(k, 0.0))
        if gaps is not None and k in gaps:
            # the range also allows for the occupancy's own errors (the length-based one)
            one_by_one = count_track(gaps[k], segs, prof.step_m, car_pitch_m, p)
            cars = one_by_one.cars
            low = min(low, one_by_one.low)
            high = max(high, one_by_one.high + math.ceil(hidden - 1e-9))
            resolved_low += low
            resolved_high += high
        valid_fraction = float(usable.mean()) if usable.size else 0.0
        results.append(
            TrackMeasurement(
                track_id=k,
                length_m=length,
                occupied_m=float(sum(e - s for s, e in segs)),
                cars=cars,
                cars_low=low,
                cars_high=high,
                valid_fraction=valid_fraction,
                segments=tuple((float(s), float(e)) for s, e in segs),
            )
        )
        total_n += n
        total_var += var - (n * p.pitch_cv) ** 2 - (n * p.model_cv) ** 2
        total_hidden += hidden
        total_len += length
        weighted_valid += valid_fraction * length
        covered = prof.covered_mask
        weighted_covered += (float(covered.mean()) if covered.size else 0.0) * length
    # pitch and model errors are shared by all tracks of a scene: they add linearly
    total_var += (total_n * p.pitch_cv) ** 2 + (total_n * p.model_cv) ** 2
    cars_sum = sum(t.cars for t in results)
    _, low, high = _interval(total_n, total_var, total_hidden, p, sum(doubtful.values()))
    if gaps is not None:
        low, high = resolved_low, resolved_high
    valid_fraction = weighted_valid / total_len if total_len > 0 else 0.0
    covered_fraction = weighted_covered / total_len if total_len > 0 else 0.0
    if covered_fraction < p.partial_below:
        flags.append("partial_coverage")
    if covered_fraction > 0 and valid_fraction / covered_fraction < p.cloudy_below:
        flags.append("cloudy")
    if alignment is not None and alignment.confidence < p.min_registration_confidence:
        flags.append("low_registration_confidence")
    shift = alignment.shift_px if alignment is not None else (0.0, 0.0)
    return SceneMeasurement(
        tracks=tuple(results),
        occupied_m=float(sum(t.occupied_m for t in results)),
        cars=cars_sum,
        cars_low=min(low, cars_sum),
        cars_high=max(high, cars_sum),
        valid_fraction=valid_fraction,
        shift_m=(shift[0] * gsd_m, shift[1] * gsd_m),
        flags=tuple(flags),
    )
