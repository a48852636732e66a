"""The per-AOI background model in the store: load, rebuild, update, and backgrounds from it.

The model (`{aoi}/background/model.npz`, see railwatch.core.background) is a cache of the
stored profiles of the AOI's latest clear scenes. Everything in it can be recomputed from the
profiles stored beside the clips, so a missing, unreadable or outdated model is rebuilt from
them (nothing is lost), and a background the model can no longer compute exactly (a backfill
far behind the newest scene) is computed from the stored profiles instead.

Writers: only the `update-background` task, one per AOI and flow run, writes an AOI's model;
the detection tasks only read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from railwatch.adapters.profiles import (
    background_key,
    decode_model,
    decode_profiles,
    encode_model,
    profile_key,
)
from railwatch.adapters.store import ObjectStore
from railwatch.core import DETECTOR_VERSION
from railwatch.core.background import (
    Background,
    BackgroundModel,
    BackgroundParams,
    SceneProfiles,
    background_at,
    background_of,
    build_model,
    covers,
    is_clear,
    merge_scene,
)
from railwatch.errors import StorageError
from railwatch.models import ClipRef

PARAMS = BackgroundParams()  # the clear-scene thresholds and history sizes (why: see the class)
WRITE_ATTEMPTS = 3  # re-merges when a concurrent writer replaced the model under us


def scene_key(clip: ClipRef) -> str:
    return f"{clip.scene.source}/{clip.scene.scene_id}"


def oldest_first(clips: Iterable[ClipRef]) -> list[ClipRef]:
    """The model's order (acquisition time, then key)."""
    return sorted(clips, key=lambda c: (c.scene.acquired, scene_key(c)))


def read_scene(clip: ClipRef, store: ObjectStore) -> SceneProfiles:
    """A measured clip as the model sees it, from its stored profiles."""
    profiles, alignment = decode_profiles(store.get_bytes(profile_key(clip)))
    return SceneProfiles(scene_key(clip), clip.scene.acquired, clip.valid_fraction,
                         alignment.confidence, profiles)


def cached_scene(clip: ClipRef, store: ObjectStore, cache: dict[str, SceneProfiles]) -> SceneProfiles:
    """`read_scene`, once per clip for a given `cache`."""
    key = scene_key(clip)
    if key not in cache:
        cache[key] = read_scene(clip, store)
    return cache[key]


@dataclass(frozen=True)
class ModelUpdate:
    """What one update did, for the task's log."""

    revision: str
    scenes: int
    added: int
    written: bool
    rebuilt: str | None  # why the stored model was rebuilt from the stored profiles


def load_model(store: ObjectStore, aoi_id: str) -> tuple[BackgroundModel | None, str | None]:
    """(model, None), or (None, why it cannot be used)."""
    key = background_key(aoi_id)
    if store.info(key) is None:
        return None, "missing"
    try:
        model = decode_model(store.get_bytes(key))
    except (ValueError, StorageError) as exc:
        return None, str(exc)
    if model.detector_version != DETECTOR_VERSION or model.capacity != PARAMS.capacity:
        return None, (f"built by detector {model.detector_version} with capacity "
                      f"{model.capacity}")
    return model, None


def rebuild_model(store: ObjectStore, history: Sequence[ClipRef], capacity: int,
                  before: datetime | None = None,
                  cache: dict[str, SceneProfiles] | None = None) -> BackgroundModel:
    """A model from the stored profiles of `history` (optionally only scenes before `before`).

    Reads newest first and stops one clear scene past `capacity` (that one only sets
    `evicted_through`), so the cost is bounded however long the history is.
    """
    cache = {} if cache is None else cache
    scenes: list[SceneProfiles] = []
    for clip in oldest_first(history)[::-1]:  # newest first
        if len(scenes) > capacity:
            break
        if clip.valid_fraction < PARAMS.min_valid_fraction or (
                before is not None and clip.scene.acquired >= before):
            continue  # not clear, or not earlier: no need to read its profiles
        scene = cached_scene(clip, store, cache)
        if is_clear(scene, PARAMS):
            scenes.append(scene)
    return build_model(reversed(scenes), DETECTOR_VERSION, PARAMS, capacity=capacity)


def update_model(aoi_id: str, clips: Sequence[ClipRef], history: Sequence[ClipRef],
                 store: ObjectStore) -> ModelUpdate:
    """Merge newly measured clips into the AOI's model, in acquisition order, and store it.

    `history` (every measured clip of the AOI) is read only when the stored model is missing,
    unreadable or outdated, or holds an earlier measurement of one of `clips` (a new version of
    a scene, or profiles measured again against a new reference): then the model is rebuilt
    from the stored profiles, so it is always what a clean run would have. Writes nothing when
    every clip is cloudy or already in the model.
    """
    rebuilt: str | None = None
    again = {scene_key(c) for c in clips}
    for _ in range(WRITE_ATTEMPTS):
        previous, why = load_model(store, aoi_id)
        stored = previous
        if previous is not None and again & previous.keys:
            stored, why = None, "scenes measured again"
        if stored is None:
            first = why == "missing" and {scene_key(c) for c in history} <= {scene_key(c) for c in clips}
            rebuilt = None if first else why
        base = stored if stored is not None else rebuild_model(store, history, PARAMS.capacity)
        merged = base
        for clip in oldest_first(clips):
            if scene_key(clip) not in merged.keys and clip.valid_fraction >= PARAMS.min_valid_fraction:
                merged = merge_scene(merged, read_scene(clip, store), PARAMS)
        encoded = None if merged is previous else encode_model(merged)
        if encoded is None or (stored is None and previous is not None and encoded == encode_model(previous)):
            # nothing new, or rebuilt into the same model: the stored one stays, byte for byte
            return ModelUpdate(merged.revision, len(merged.entries), 0, False, None)
        store.put_bytes(background_key(aoi_id), encoded)
        check, _ = load_model(store, aoi_id)  # a concurrent writer may have replaced it
        if check is not None and check.revision == merged.revision:
            break
    return ModelUpdate(merged.revision, len(merged.entries), len(merged.keys - base.keys), True,
                       rebuilt)


def early_clips(history: Iterable[ClipRef], without: ClipRef | None = None,
                extra: int = 0) -> list[ClipRef]:
    """The AOI's first `early_scenes` (+ `extra`) clips clear enough for a background (by their
    valid fraction; the model also asks a trustworthy registration), `without` one, oldest first."""
    skip = None if without is None else scene_key(without)
    candidates = [c for c in history
                  if c.valid_fraction >= PARAMS.min_valid_fraction and scene_key(c) != skip]
    return oldest_first(candidates)[:PARAMS.early_scenes + extra]


def affected_clips(new: Sequence[ClipRef], history: Sequence[ClipRef]) -> list[ClipRef]:
    """The clips whose counts `new` (just measured) can change: themselves, and every measured
    clip acquired after the earliest of them (its background is made of earlier scenes), in
    acquisition order. A late scene's arrival thus gives the counts a clean run would have.

    And the AOI's first days, when one of `new` is among the first clear scenes their early
    background is made of (`Backgrounds.of`): every clip up to the last of those (one more than
    `early_scenes`, as a scene among them is left out of its own) is measured again."""
    if not new:
        return []
    first = min(c.scene.acquired for c in new)
    window = early_clips(history, extra=1)
    revised = window[-1].scene.acquired if window and first <= window[-1].scene.acquired else None
    by_key = {scene_key(c): c for c in history if c.scene.acquired > first
              or (revised is not None and c.scene.acquired <= revised)}
    by_key.update({scene_key(c): c for c in new})
    return oldest_first(by_key.values())


class Backgrounds:
    """Backgrounds of one AOI's scenes: from the stored model, else from the stored profiles.

    Read-only: a detection task never writes the model (the update task does), so when the
    stored model is unusable this rebuilds it in memory and says why in `problem`.
    """

    def __init__(self, aoi_id: str, history: Sequence[ClipRef], store: ObjectStore) -> None:
        self.store = store
        self.history = list(history)
        self.cache: dict[str, SceneProfiles] = {}
        model, self.problem = load_model(store, aoi_id)
        self.model = model or rebuild_model(store, history, PARAMS.capacity, cache=self.cache)

    def of(self, clip: ClipRef) -> Background:
        """The background of `clip`: of the clear scenes before it, else (an AOI's first days)
        of the AOI's first `early_scenes` clear scenes other than it, else none (the caller
        uses the reference composite)."""
        used = self.at(clip.scene.acquired)
        if used.profiles is not None:
            return used
        early = early_clips(self.history, without=clip)
        if len(early) < PARAMS.early_scenes:
            return used
        model = build_model([cached_scene(c, self.store, self.cache) for c in early],
                            DETECTOR_VERSION, PARAMS, capacity=PARAMS.early_scenes)
        found = background_of(model, PARAMS)
        return found if found.profiles is not None else used

    def at(self, acquired: datetime) -> Background:
        """The background of a scene acquired at `acquired` (earlier clear scenes only)."""
        if covers(self.model, acquired, PARAMS):
            return background_at(self.model, acquired, PARAMS)
        # far behind the model's window: the same computation from the stored profiles
        window = rebuild_model(self.store, self.history, PARAMS.window, before=acquired,
                               cache=self.cache)
        return background_at(window, acquired, PARAMS)
