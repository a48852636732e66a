"""The per-AOI background model: a bounded ring of the latest clear scenes' track profiles.

A scene's background is the per-position median of the AOI's earlier clear scenes
(`background_from_history`). Rather than decoding every stored profile of the AOI for every
scene, the pipeline keeps the profiles of the most recent clear scenes in one small object per
AOI. It keeps the scenes themselves, not a running median, because the background of a scene
acquired at T may only use scenes acquired before T: that is what makes a backfill (in any
order) compute the counts the live runs computed. The one exception, an AOI's first days, uses
the AOI's first clear scenes (`BackgroundParams.early_scenes`, `background_of`): it is a
function of the set of scenes too, and their counts are revised when those scenes arrive.

The model's content is a function of the SET of scenes merged into it (the newest `capacity`
by acquisition time, plus the time of the newest one that fell out), never of the order they
came in, so merging a scene twice is a no-op and a rebuilt model equals the incremental one.
Pure: no I/O, arrays and dataclasses only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt

from railwatch.core.history import WindowMedians, background_profile
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile


@dataclass(frozen=True)
class BackgroundParams:
    """What makes a scene "clear" enough to be background, and how much history to keep.

    The thresholds live here, in one place. A misregistered scene smears ballast and rails
    across each other, so its registration must be trustworthy (confidence ≥ 0.3, the level
    below which `Alignment` calls a shift doubtful). Masked samples never enter the median (and
    a position needs `DetectorParams.history_min_valid` samples), so a half-clouded scene's clear
    half is as good as a clear scene's; but below half the AOI, what is left is mostly cloud
    edges and haze the mask missed, and the scene would count towards `min_scenes` while adding
    little. Requiring 90 % (as the reference composite does) made early scenes of the simulated
    Tumangang season fall back to the reference composite, which holds the cars standing there
    during its first days (2023-09-13: 11 cars for 20), hence 50 %.
    """

    min_valid_fraction: float = 0.5
    min_confidence: float = 0.3
    window: int = 60  # earlier clear scenes in one background (about two months of daily scenes)
    # scenes kept: the window plus about a month of slack, so that a scene arriving late (or a
    # short backfill behind the newest scene) still finds its whole window in the model
    capacity: int = 90
    min_scenes: int = 5  # fewer earlier clear scenes: an early background (below)
    # A scene with fewer than `min_scenes` clear scenes before it (an AOI's first days) is
    # measured against the AOI's first `early_scenes` clear scenes other than itself, once they
    # exist; until then against the reference composite. The composite is the median of the
    # first few dates, so a train standing through them is in it and its stretch reads as cars
    # or gaps; scenes from after the train left show the ballast (year bench, first five scenes
    # of each AOI: mean absolute track error 0.83 -> 0.26 cars, interval 86 -> 97 %).
    early_scenes: int = 10

    def __post_init__(self) -> None:
        if (self.capacity < self.window or self.window < self.min_scenes or self.min_scenes < 1
                or self.early_scenes < self.min_scenes):
            raise ValueError("BackgroundParams needs capacity >= window >= min_scenes >= 1 "
                             "and early_scenes >= min_scenes")


@dataclass(frozen=True)
class SceneProfiles:
    """One measured scene as the model sees it: identity, time, quality and its profiles."""

    key: str  # "source/scene_id", unique within an AOI
    acquired: datetime
    valid_fraction: float
    confidence: float  # registration confidence (Alignment.confidence)
    profiles: Mapping[str, TrackProfile]


@dataclass(frozen=True)
class ModelEntry:
    """A clear scene kept in the model: per track (S, bands) float32 values and (S,) valid,
    and (S, 2, bands) `sides` where its profiles have them (`TrackProfile.sides`)."""

    key: str
    acquired: datetime
    values: Mapping[str, npt.NDArray[np.float32]]
    valid: Mapping[str, BoolArray]
    sides: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)

    @property
    def order(self) -> tuple[datetime, str]:
        """The model's total order: acquisition time, then key (ties between sources)."""
        return self.acquired, self.key


@dataclass(frozen=True)
class TrackGeometry:
    """What every entry of one track shares: the sampling step and the sample positions."""

    step_m: float
    positions: npt.NDArray[np.float64]


@dataclass(frozen=True)
class BackgroundModel:
    """The newest `capacity` clear scenes of an AOI, oldest first.

    `evicted_through` is the acquisition time of the newest scene that fell out of the ring
    (None: nothing ever did), so the model knows which backgrounds it can still compute exactly.
    """

    detector_version: str
    capacity: int
    tracks: Mapping[str, TrackGeometry] = field(default_factory=dict)
    entries: tuple[ModelEntry, ...] = ()
    evicted_through: datetime | None = None

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(e.key for e in self.entries)

    @property
    def revision(self) -> str:
        """A short content id: the same scenes give the same revision, whatever their order."""
        return scenes_digest([e.key for e in self.entries], self.evicted_through)

    @cached_property
    def stacked(self) -> dict[str, TrackStack]:
        """Per track, the entries' profiles stacked once: a background's window is a slice."""
        return {t: TrackStack.of(t, self.entries) for t in self.tracks}

    @cached_property
    def computed(self) -> dict[tuple[int, int, DetectorParams | None], Background]:
        """The last background computed (cloudy scenes in a row share their window)."""
        return {}


@dataclass(frozen=True)
class TrackStack:
    """One track's values (E, S, bands), valid (E, S) and sides (E, S, 2, bands; NaN for an
    entry without them, `has_sides` False) over a model's entries."""

    values: npt.NDArray[np.float32]
    valid: BoolArray
    sides: npt.NDArray[np.float32] | None
    has_sides: BoolArray

    @classmethod
    def of(cls, track_id: str, entries: tuple[ModelEntry, ...]) -> TrackStack:
        values = np.stack([e.values[track_id] for e in entries])
        has = np.array([track_id in e.sides for e in entries], dtype=bool)
        sides = None
        if has.any():
            shape = (*values.shape[:2], 2, values.shape[2])
            sides = np.stack([e.sides[track_id] if track_id in e.sides
                              else np.full(shape[1:], np.nan, np.float32) for e in entries])
        return cls(values, np.stack([e.valid[track_id] for e in entries]), sides, has)

    @cached_property
    def value_medians(self) -> WindowMedians:
        return WindowMedians(np.where(self.valid[..., None], self.values, np.float32(np.nan)))

    @cached_property
    def side_medians(self) -> WindowMedians | None:
        return None if self.sides is None else WindowMedians(self.sides)


@dataclass(frozen=True)
class Background:
    """The background of one scene: profiles (None: too little history, use the reference)
    and the keys of the scenes it was computed from."""

    profiles: dict[str, TrackProfile] | None
    scenes: tuple[str, ...]

    @property
    def digest(self) -> str:
        """Identifies the scenes used, so a stored count says which background it came from."""
        return scenes_digest(self.scenes, None) if self.profiles is not None else "reference"


def scenes_digest(keys: Iterable[str], evicted_through: datetime | None) -> str:
    text = "\n".join(sorted(keys)) + f"\n{evicted_through.isoformat() if evicted_through else ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def is_clear(scene: SceneProfiles, params: BackgroundParams) -> bool:
    """Clear enough to be part of other scenes' background (see BackgroundParams)."""
    return (scene.valid_fraction >= params.min_valid_fraction
            and scene.confidence >= params.min_confidence
            and any(p.valid.any() for p in scene.profiles.values()))


def merge_scene(model: BackgroundModel, scene: SceneProfiles,
                params: BackgroundParams) -> BackgroundModel:
    """The model with `scene` in it; the same model when the scene is cloudy, already there, or
    older than the ring holds.

    The oldest entries fall out beyond `capacity`. Raises ValueError when the scene's tracks do
    not match the model's (the AOI's tracks changed: the model must be rebuilt).
    """
    if scene.key in model.keys or not is_clear(scene, params):
        return model
    tracks = dict(model.tracks) or {
        tid: TrackGeometry(p.step_m, p.positions) for tid, p in scene.profiles.items()
    }
    if set(tracks) != set(scene.profiles) or any(
        len(scene.profiles[t].valid) != len(g.positions) for t, g in tracks.items()
    ):
        raise ValueError(f"scene {scene.key}: its tracks do not match the background model's")
    entry = ModelEntry(
        key=scene.key, acquired=scene.acquired,
        values={t: np.asarray(p.values, dtype=np.float32) for t, p in scene.profiles.items()},
        valid={t: np.asarray(p.valid, dtype=bool) for t, p in scene.profiles.items()},
        sides={t: np.asarray(p.sides, dtype=np.float32) for t, p in scene.profiles.items()
               if p.sides.shape[0] == len(p.valid)},
    )
    ordered = sorted((*model.entries, entry), key=lambda e: e.order)
    kept, dropped = ordered[-model.capacity:], ordered[:-model.capacity]
    evicted = max([e.acquired for e in dropped]
                  + ([model.evicted_through] if model.evicted_through else []), default=None)
    if entry in dropped and evicted == model.evicted_through:
        return model  # older than everything kept, and than what fell out before: no change
    return replace(model, tracks=tracks, entries=tuple(kept), evicted_through=evicted)


def build_model(scenes: Iterable[SceneProfiles], detector_version: str,
                params: BackgroundParams, capacity: int | None = None) -> BackgroundModel:
    """A model from scratch (e.g. from the stored profiles, when the stored model is lost)."""
    model = BackgroundModel(detector_version=detector_version,
                            capacity=params.capacity if capacity is None else capacity)
    for scene in scenes:
        model = merge_scene(model, scene, params)
    return model


def covers(model: BackgroundModel, acquired: datetime, params: BackgroundParams) -> bool:
    """Whether the model holds every scene the background at `acquired` needs.

    It does when nothing was ever evicted, or when a whole window of kept scenes precedes
    `acquired` (everything after `evicted_through` is kept, so those are the latest ones).
    """
    before = sum(1 for e in model.entries if e.acquired < acquired)
    return model.evicted_through is None or before >= params.window


def background_at(model: BackgroundModel, acquired: datetime, params: BackgroundParams,
                  detector: DetectorParams | None = None) -> Background:
    """The background of a scene acquired at `acquired`: the latest `window` clear scenes
    acquired strictly before it, never a later one. Raises ValueError if not `covers`."""
    if not covers(model, acquired, params):
        raise ValueError(f"the background model no longer holds the scenes before {acquired}")
    before = sum(1 for e in model.entries if e.acquired < acquired)  # the entries are in order
    return _background(model, max(before - params.window, 0), before, params, detector)


def background_of(model: BackgroundModel, params: BackgroundParams,
                  detector: DetectorParams | None = None) -> Background:
    """The background from every scene `model` holds (its latest `window`), whenever acquired:
    an early scene's, from a model of the AOI's first clear scenes without it."""
    count = len(model.entries)
    return _background(model, max(count - params.window, 0), count, params, detector)


def _background(model: BackgroundModel, first: int, last: int, params: BackgroundParams,
                detector: DetectorParams | None) -> Background:
    """The median of entries[first:last] (`background_from_history` of their profiles: every
    entry is clear, so each counts towards `min_scenes`)."""
    memo = (first, last, detector)
    if memo in model.computed:
        return model.computed[memo]
    if last - first < params.min_scenes:
        return Background(None, ())
    min_valid = (detector or DetectorParams()).history_min_valid
    profiles: dict[str, TrackProfile] = {}
    for t, geometry in model.tracks.items():
        stack = model.stacked[t]
        sides = stack.side_medians if stack.has_sides[first:last].all() else None
        profiles[t] = background_profile(
            t, geometry.step_m, geometry.positions, stack.valid[first:last],
            stack.value_medians.median(first, last)[0],
            sides.median(first, last) if sides is not None else None, min_valid)
    found = Background(profiles, tuple(e.key for e in model.entries[first:last]))
    model.computed.clear()
    model.computed[memo] = found
    return found
