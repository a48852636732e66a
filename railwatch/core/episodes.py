"""Alert episodes from per-scene surge flags: one alert per surge, not one per flagged scene.

An episode opens on the first reliable flagged scene, is updated when a flagged scene beats
the last announced peak by more than `min_growth`, and closes after `close_after` consecutive
reliable scenes that are not flagged. Unreliable scenes (cloudy, poorly registered) neither
open, extend nor close one: a cloudy week inside a surge is not evidence that it ended.
Episodes depend only on the series, so a backfill yields the same episodes, in the same
order, as the live runs did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

TransitionKind = Literal["opened", "updated", "closed"]
LOW_CONFIDENCE_FLAGS = frozenset({"low_registration_confidence"})


@dataclass(frozen=True)
class ScenePoint:
    """What the episode logic needs of one scene."""

    scene_id: str
    acquired: datetime
    cars: int
    surge: bool
    reliable: bool


@dataclass(frozen=True)
class Transition:
    """One change of an episode, tied to the scene that caused it."""

    kind: TransitionKind
    scene_id: str
    at: datetime


@dataclass(frozen=True)
class Episode:
    """One surge, from its first flagged scene to the scene that closed it (None: still open)."""

    opened_scene_id: str
    opened_at: datetime
    peak_scene_id: str
    peak_cars: int
    scene_ids: tuple[str, ...]  # the flagged scenes of the episode
    transitions: tuple[Transition, ...]
    closed_scene_id: str | None = None
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def is_reliable(valid_fraction: float, flags: Iterable[str], min_valid_fraction: float) -> bool:
    """Enough of the yard seen, and registered with confidence: the scene may open or close."""
    return valid_fraction >= min_valid_fraction and not LOW_CONFIDENCE_FLAGS.intersection(flags)


@dataclass
class _Open:
    first: ScenePoint
    peak: ScenePoint
    told: int  # the peak the last opened/updated transition announced
    scenes: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    quiet: int = 0

    def freeze(self, closer: ScenePoint | None = None) -> Episode:
        transitions = list(self.transitions)
        if closer is not None:
            transitions.append(Transition("closed", closer.scene_id, closer.acquired))
        return Episode(self.first.scene_id, self.first.acquired, self.peak.scene_id, self.peak.cars,
                       tuple(self.scenes), tuple(transitions),
                       closer.scene_id if closer else None, closer.acquired if closer else None)


def surge_episodes(points: Sequence[ScenePoint], close_after: int = 3,
                   min_growth: float = 0.1) -> list[Episode]:
    """Episodes of a series sorted by acquisition time (oldest first); an update is raised when
    a flagged scene beats the last announced peak by more than `min_growth` (a share of it)."""
    if close_after < 1:
        raise ValueError(f"close_after must be at least 1, not {close_after}")
    episodes: list[Episode] = []
    current: _Open | None = None
    for p in points:
        if not p.reliable:
            continue
        if p.surge and current is None:
            current = _Open(first=p, peak=p, told=p.cars, scenes=[p.scene_id],
                            transitions=[Transition("opened", p.scene_id, p.acquired)])
        elif p.surge and current is not None:
            current.scenes.append(p.scene_id)
            current.quiet = 0
            if p.cars > current.peak.cars:
                current.peak = p
            if p.cars > current.told * (1 + min_growth):  # news, not every new car
                current.told = p.cars
                current.transitions.append(Transition("updated", p.scene_id, p.acquired))
        elif current is not None:
            current.quiet += 1
            if current.quiet >= close_after:
                episodes.append(current.freeze(closer=p))
                current = None
    if current is not None:
        episodes.append(current.freeze())
    return episodes
