"""Measurement: clips in the store → registered track profiles → counts, via the pure core.

Each AOI has a reference composite (median of its first clear clips, co-registered), stored
once so every later clip is registered to the same anchor; and a background model per track
(per-position median of the profiles of earlier scenes), rebuilt from stored profiles.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from railwatch.adapters.raster import decode_raster, encode_cog
from railwatch.adapters.store import ObjectStore
from railwatch.aoi import AOI
from railwatch.core import (
    DETECTOR_VERSION,
    Alignment,
    TrackLine,
    TrackProfile,
    background_from_history,
    build_composite,
    estimate_alignment,
    extract_profiles,
    measure_scene,
)
from railwatch.grid import AOIGrid
from railwatch.models import ClipRef, MeasuredScene, SceneCount, TrackCount

REFERENCE_SCENES = 5  # clips in an AOI's reference composite (zero-mean misregistration averages out)
REFERENCE_MIN_VALID = 0.9  # only nearly clear clips go into it
HISTORY_SCENES = 60  # earlier scenes in the background model


def reference_keys(aoi_id: str) -> tuple[str, str]:
    return f"{aoi_id}/reference/composite.tif", f"{aoi_id}/reference/valid.tif"


def profile_key(clip: ClipRef) -> str:
    return clip.image_key.rsplit("/", 1)[0] + "/profiles.npz"


def track_lines(aoi: AOI, grid: AOIGrid) -> list[TrackLine]:
    return [TrackLine(t.id, tuple(grid.to_pixels(t.geometry))) for t in aoi.tracks]


def load_clip(store: ObjectStore, image_key: str, mask_key: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored clip as (float32 image, bool valid)."""
    image = decode_raster(store.get_bytes(image_key)).astype(np.float32)
    valid = decode_raster(store.get_bytes(mask_key))[0].astype(bool) & np.any(image > 0, axis=0)
    return image, valid


def ensure_reference(aoi: AOI, grid: AOIGrid, clips: Sequence[ClipRef], store: ObjectStore) -> bool:
    """Build the AOI's reference composite if it does not exist; False if no clip is usable."""
    image_key, valid_key = reference_keys(aoi.id)
    if store.info(image_key) is not None and store.info(valid_key) is not None:
        return True
    ranked = sorted(clips, key=lambda c: c.scene.acquired)
    chosen = [c for c in ranked if c.valid_fraction >= REFERENCE_MIN_VALID][:REFERENCE_SCENES]
    if not chosen:
        chosen = sorted(ranked, key=lambda c: -c.valid_fraction)[:1]
        if not chosen or chosen[0].valid_fraction <= 0:
            return False
    loaded = [load_clip(store, c.image_key, c.mask_key) for c in chosen]
    composite, valid, _ = build_composite([i for i, _ in loaded], [v for _, v in loaded])
    pixels = np.where(valid, np.clip(np.rint(composite), 1, 65535), 0).astype(np.uint16)
    store.put_bytes(image_key, encode_cog(pixels, grid, nodata=0))
    store.put_bytes(valid_key, encode_cog(valid[np.newaxis].astype(np.uint8), grid))
    return True


def load_reference(aoi: AOI, store: ObjectStore) -> tuple[np.ndarray, np.ndarray]:
    return load_clip(store, *reference_keys(aoi.id))


def measure_clip(clip: ClipRef, aoi: AOI, grid: AOIGrid, store: ObjectStore,
                 reference: tuple[np.ndarray, np.ndarray]) -> MeasuredScene:
    """Register a clip to the AOI reference and store its track profiles."""
    started = time.perf_counter()
    image, valid = load_clip(store, clip.image_key, clip.mask_key)
    # the tracks are profiled where the registered image would put them (no resampling)
    alignment = estimate_alignment(image, valid, *reference)
    profiles = extract_profiles(image, valid, track_lines(aoi, grid), grid.gsd_m, alignment=alignment)
    key = profile_key(clip)
    store.put_bytes(key, encode_profiles(profiles, alignment))
    return MeasuredScene(
        clip=clip,
        profile_key=key,
        shift_px=alignment.shift_px,
        registration_confidence=alignment.confidence,
        seconds=time.perf_counter() - started,
    )


def encode_profiles(profiles: dict[str, TrackProfile], alignment: Alignment) -> bytes:
    arrays: dict[str, Any] = {}
    for tid, prof in profiles.items():
        arrays[f"values/{tid}"] = prof.values
        arrays[f"valid/{tid}"] = prof.valid
        arrays[f"positions/{tid}"] = prof.positions
        arrays[f"covered/{tid}"] = prof.covered
    meta = {"step_m": {t: p.step_m for t, p in profiles.items()},
            "alignment": {"shift_px": list(alignment.shift_px), "confidence": alignment.confidence,
                          "gains": list(alignment.gains), "offsets": list(alignment.offsets)}}
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def decode_profiles(data: bytes) -> tuple[dict[str, TrackProfile], Alignment]:
    with np.load(io.BytesIO(data)) as npz:
        meta = json.loads(npz["meta"].tobytes().decode())
        profiles = {
            tid: TrackProfile(tid, float(step), npz[f"values/{tid}"], npz[f"valid/{tid}"],
                              npz[f"positions/{tid}"], npz[f"covered/{tid}"])
            for tid, step in meta["step_m"].items()
        }
    a = meta["alignment"]
    alignment = Alignment(tuple(a["shift_px"]), float(a["confidence"]), tuple(a["gains"]),
                          tuple(a["offsets"]))
    return profiles, alignment


def detect_scenes(aoi: AOI, grid: AOIGrid, targets: Sequence[ClipRef],
                  history: Sequence[ClipRef], store: ObjectStore) -> list[SceneCount]:
    """Counts for `targets`, each against the background of the scenes acquired before it.

    `history` holds every measured clip of the AOI (targets included); the background of a
    scene uses only earlier ones, so a backfill computes what the live runs computed.
    """
    loaded = {c.scene.scene_id: decode_profiles(store.get_bytes(profile_key(c)))
              for c in sorted(history, key=lambda c: c.scene.acquired)}
    ordered = sorted(history, key=lambda c: c.scene.acquired)
    lengths = {t.id: t.length_m for t in aoi.tracks}
    lines = track_lines(aoi, grid)
    reference_profiles: dict[str, TrackProfile] | None = None
    results = []
    for clip in targets:
        started = time.perf_counter()
        profiles, alignment = loaded[clip.scene.scene_id]
        earlier = [loaded[c.scene.scene_id][0] for c in ordered
                   if c.scene.acquired < clip.scene.acquired][-HISTORY_SCENES:]
        background = background_from_history(earlier)
        if background is None:  # little history yet: the reference composite is the background
            if reference_profiles is None:
                image, valid = load_reference(aoi, store)
                reference_profiles = extract_profiles(image, valid, track_lines(aoi, grid),
                                                      grid.gsd_m)
            background = reference_profiles
        m = measure_scene(profiles, background, grid.gsd_m, aoi.car_pitch_m, alignment,
                          track_lengths_m=lengths, tracks=lines,
                          sun_azimuth_deg=clip.scene.sun_azimuth)
        results.append(SceneCount(
            aoi_id=aoi.id, source=clip.scene.source, scene_id=clip.scene.scene_id,
            acquired=clip.scene.acquired, detector_version=DETECTOR_VERSION,
            tracks=tuple(TrackCount(track_id=t.track_id, length_m=t.length_m,
                                    occupied_m=t.occupied_m, cars=t.cars, cars_low=t.cars_low,
                                    cars_high=t.cars_high, valid_fraction=t.valid_fraction)
                         for t in m.tracks),
            occupied_m=m.occupied_m, cars=m.cars, cars_low=m.cars_low, cars_high=m.cars_high,
            valid_fraction=m.valid_fraction, shift_m=m.shift_m, flags=m.flags,
            image_key=clip.image_key, mask_key=clip.mask_key,
            seconds=time.perf_counter() - started,
        ))
    return results
