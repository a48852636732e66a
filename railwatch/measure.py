"""Measurement: clips in the store → registered track profiles → counts, via the pure core.

Each AOI has a reference composite (median of its first clear clips by acquisition,
co-registered) to which every clip is registered; and a background model (the profiles
of its latest clear scenes, railwatch.background) from which the background of a scene, the
per-position median of the earlier ones, is computed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from railwatch.adapters.profiles import decode_profiles, encode_profiles, profile_key
from railwatch.adapters.raster import decode_raster, encode_cog
from railwatch.adapters.store import ObjectStore, sha256_hex
from railwatch.aoi import AOI
from railwatch.background import Backgrounds
from railwatch.core import (
    DETECTOR_VERSION,
    DetectorParams,
    TrackLine,
    TrackProfile,
    build_composite,
    estimate_alignment,
    extract_profiles,
    measure_scene,
)
from railwatch.core.locate import TrackLocation, located_tracks, on_aoi
from railwatch.core.registration import ReferenceTiles
from railwatch.grid import AOIGrid
from railwatch.models import ClipRef, MeasuredScene, SceneCount, SceneRef, TrackCount
from railwatch.settings import get_settings

REFERENCE_SCENES = 5  # clips in an AOI's reference composite (zero-mean misregistration averages out)
REFERENCE_MIN_VALID = 0.9  # only nearly clear clips go into it
REGISTRATION_MAX_SHIFT_M = 18.0  # PlanetScope geolocation errors reach ~10 m; some margin


def reference_keys(aoi_id: str) -> tuple[str, str]:
    return f"{aoi_id}/reference/composite.tif", f"{aoi_id}/reference/valid.tif"


def reference_manifest_key(aoi_id: str) -> str:
    return f"{aoi_id}/reference/scenes.json"


def track_lines(aoi: AOI, grid: AOIGrid) -> list[TrackLine]:
    return [TrackLine(t.id, tuple(grid.to_pixels(t.geometry))) for t in aoi.tracks]


def load_clip(store: ObjectStore, image_key: str, mask_key: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored clip as (float32 image, bool valid)."""
    return clip_arrays(decode_raster(store.get_bytes(image_key), image_key),
                       decode_raster(store.get_bytes(mask_key), mask_key)[0])


def clip_footprint(image: np.ndarray) -> np.ndarray:
    """Where a clip has data at all, inside the scene's footprint (its nodata is 0 in every band)."""
    return np.asarray(np.any(image > 0, axis=0))


def clip_arrays(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A clip's stored pixels (image bands, usable mask) as measured: (float32 image, bool valid)."""
    return image.astype(np.float32), mask.astype(bool) & clip_footprint(image)


def reference_scenes(clips: Sequence[ClipRef]) -> list[ClipRef]:
    """The clips an AOI's reference is made of, from all its clipped scenes: the first
    REFERENCE_SCENES nearly clear ones by acquisition, else the most complete one.

    A function of the set of clips, not of the order they arrived in: a scene that failed and
    was clipped later still takes its place, and the counts converge to a clean run's.
    """
    ranked = sorted(clips, key=lambda c: (c.scene.acquired, c.scene.source, c.scene.scene_id))
    chosen = [c for c in ranked if c.valid_fraction >= REFERENCE_MIN_VALID][:REFERENCE_SCENES]
    if not chosen:
        best = sorted(ranked, key=lambda c: -c.valid_fraction)[:1]
        chosen = [c for c in best if c.valid_fraction > 0]
    return chosen


def ensure_reference(aoi: AOI, grid: AOIGrid, clips: Sequence[ClipRef], store: ObjectStore) -> str:
    """Make the AOI's reference composite match `reference_scenes(clips)`: "kept" (already
    made of those scenes), "built" (made now: every profile measured against an earlier one is
    outdated), or "none" (no usable clip yet)."""
    chosen = reference_scenes(clips)
    if not chosen:
        return "none"
    image_key, valid_key = reference_keys(aoi.id)
    manifest = json.dumps(sorted(f"{c.scene.source}/{c.scene.scene_id}@{c.scene.version or ''}"
                                 for c in chosen)).encode()  # a new version of one: rebuilt
    stored = store.info(reference_manifest_key(aoi.id))
    if stored is not None and stored.sha256 == sha256_hex(manifest) and store.info(image_key) is not None:
        return "kept"
    loaded = [load_clip(store, c.image_key, c.mask_key) for c in chosen]
    composite, valid, _ = build_composite([i for i, _ in loaded], [v for _, v in loaded])
    pixels = np.where(valid, np.clip(np.rint(composite), 1, 65535), 0).astype(np.uint16)
    compression = get_settings().clip_compression
    store.put_bytes(image_key, encode_cog(pixels, grid, nodata=0, compression=compression))
    store.put_bytes(valid_key, encode_cog(valid[np.newaxis].astype(np.uint8), grid,
                                          compression=compression))
    store.put_bytes(reference_manifest_key(aoi.id), manifest)  # last: names what is in place
    return "built"


def reference_is_final(clips: Sequence[ClipRef], scenes: Sequence[SceneRef]) -> bool:
    """Whether clipping `scenes` leaves an AOI's reference as `clips` (its clips so far) make
    it: it holds all its REFERENCE_SCENES, each acquired before every one of `scenes`, so none
    of them can take a place in it. Their clips can then be measured as they are made."""
    chosen = reference_scenes(clips)
    if len(chosen) < REFERENCE_SCENES:
        return False
    latest = max(c.scene.acquired for c in chosen)
    return all(s.acquired > latest for s in scenes)


def reference_digest(store: ObjectStore, aoi_id: str) -> str | None:
    """Which reference is in place: the digest of its manifest (written last), None if none."""
    info = store.info(reference_manifest_key(aoi_id))
    return info.sha256 if info is not None else None


@dataclass(frozen=True)
class Reference:
    """An AOI's reference composite and where it shows the AOI's tracks (the composite averages
    a few misregistered clips: closer to the truth than any one, yet not on it); `digest` says
    which one it is (None: it was being replaced while it was read)."""

    image: np.ndarray
    valid: np.ndarray
    tracks: list[TrackLine]
    location: TrackLocation
    digest: str | None = None
    tiles: ReferenceTiles | None = None  # its side of the alignment, shared by the clips


def load_reference(aoi: AOI, grid: AOIGrid, store: ObjectStore) -> Reference:
    """The stored composite, its tracks located once for all the clips measured against it."""
    before = reference_digest(store, aoi.id)
    image, valid = load_clip(store, *reference_keys(aoi.id))
    tracks, location = located_tracks((image, valid), track_lines(aoi, grid), grid.gsd_m,
                                      DetectorParams(), REGISTRATION_MAX_SHIFT_M)
    digest = before if before is not None and reference_digest(store, aoi.id) == before else None
    return Reference(image, valid, tracks, location, digest,
                     ReferenceTiles(image, valid, DetectorParams()))


def measure_clip(clip: ClipRef, aoi: AOI, grid: AOIGrid, store: ObjectStore,
                 reference: Reference) -> MeasuredScene:
    """Register a stored clip to the AOI reference and store its track profiles."""
    started = time.perf_counter()
    image, valid = load_clip(store, clip.image_key, clip.mask_key)
    return measure_pixels(clip, image, valid, grid, store, reference, started)


def measure_pixels(clip: ClipRef, image: np.ndarray, valid: np.ndarray, grid: AOIGrid,
                   store: ObjectStore, reference: Reference, started: float | None = None
                   ) -> MeasuredScene:
    """`measure_clip` on the clip's pixels (float32 image, bool valid, as `load_clip` gives)."""
    started = time.perf_counter() if started is None else started
    params = DetectorParams()
    # the tracks are profiled where the registered image would put them (no resampling)
    alignment = estimate_alignment(image, valid, reference.image, reference.valid,
                                   REGISTRATION_MAX_SHIFT_M / grid.gsd_m, params, reference.tiles)
    # outside the scene's footprint is partial coverage, not cloud
    profiles = extract_profiles(image, valid, reference.tracks, grid.gsd_m, params=params,
                                coverage=clip_footprint(image), alignment=alignment)
    alignment = on_aoi(alignment, reference.location, image.shape[0])  # what is reported
    key = profile_key(clip)
    store.put_bytes(key, encode_profiles(profiles, alignment))
    return MeasuredScene(
        clip=clip,
        profile_key=key,
        shift_px=alignment.shift_px,
        registration_confidence=alignment.confidence,
        reference_id=reference.digest,
        seconds=time.perf_counter() - started,
    )


def detect_scenes(aoi: AOI, grid: AOIGrid, targets: Sequence[ClipRef],
                  history: Sequence[ClipRef], store: ObjectStore
                  ) -> tuple[list[SceneCount], str | None]:
    """Counts for `targets`, each against the background of the clear scenes acquired before it
    (an AOI's first days: of its first clear scenes, `Backgrounds.of`); and why the stored
    background model could not be used, if it could not.

    The background comes from the AOI's stored model (updated before detection), else from the
    stored profiles of `history` (every measured clip of the AOI); either way it is a function
    of the set of measured scenes, so a backfill computes what the live runs computed.
    """
    backgrounds = Backgrounds(aoi.id, history, store)
    lengths = {t.id: t.length_m for t in aoi.tracks}
    lines = track_lines(aoi, grid)
    reference_profiles: dict[str, TrackProfile] | None = None
    results = []
    for clip in targets:
        started = time.perf_counter()
        profiles, alignment = decode_profiles(store.get_bytes(profile_key(clip)))
        used = backgrounds.of(clip)
        background = used.profiles
        if background is None:  # little history yet: the reference composite is the background
            if reference_profiles is None:
                reference = load_reference(aoi, grid, store)
                reference_profiles = extract_profiles(reference.image, reference.valid,
                                                      reference.tracks, grid.gsd_m)
            background = reference_profiles
        m = measure_scene(profiles, background, grid.gsd_m, aoi.car_pitch_m, alignment,
                          track_lengths_m=lengths, tracks=lines,
                          sun_azimuth_deg=clip.scene.sun_azimuth,
                          sun_elevation_deg=clip.scene.sun_elevation)
        results.append(SceneCount(
            aoi_id=aoi.id, source=clip.scene.source, scene_id=clip.scene.scene_id,
            acquired=clip.scene.acquired, detector_version=DETECTOR_VERSION,
            tracks=tuple(TrackCount(track_id=t.track_id, length_m=t.length_m,
                                    occupied_m=t.occupied_m, cars=t.cars, cars_low=t.cars_low,
                                    cars_high=t.cars_high, valid_fraction=t.valid_fraction,
                                    segments=t.segments)
                         for t in m.tracks),
            occupied_m=m.occupied_m, cars=m.cars, cars_low=m.cars_low, cars_high=m.cars_high,
            valid_fraction=m.valid_fraction, shift_m=m.shift_m, flags=m.flags,
            image_key=clip.image_key, mask_key=clip.mask_key,
            background_scenes=len(used.scenes), background_id=used.digest,
            seconds=time.perf_counter() - started,
        ))
    return results, backgrounds.problem
