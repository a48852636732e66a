"""Alert episodes on series with known surges, gaps and cloudy days; live runs equal a backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from railwatch.core.episodes import ScenePoint, is_reliable, surge_episodes
from railwatch.core.surge import flag_surges

START = datetime(2023, 9, 1, tzinfo=UTC)


def points(counts: list[int], valid: list[float] | None = None, history_max: float = 20,
           days: list[int] | None = None) -> list[ScenePoint]:
    """Scenes one a day (or on `days`), flagged by the real surge test."""
    valid = valid or [1.0] * len(counts)
    times = [START + timedelta(days=d) for d in (days or range(len(counts)))]
    flags = flag_surges(times, counts, valid, history_max=history_max)
    return [ScenePoint(f"s{i:02d}", t, c, f.surge, is_reliable(v, (), 0.6))
            for i, (t, c, v, f) in enumerate(zip(times, counts, valid, flags, strict=True))]


QUIET = [10, 12, 8, 15, 9, 11, 13, 10, 12, 14]


def test_one_surge_is_one_episode_opened_updated_and_closed() -> None:
    counts = [*QUIET, 35, 45, 40, 60, 73, 70, 11, 9, 12, 10]
    (episode,) = surge_episodes(points(counts), close_after=3)
    assert [(t.kind, t.scene_id) for t in episode.transitions] == [
        ("opened", "s10"), ("updated", "s11"), ("updated", "s13"), ("updated", "s14"),
        ("closed", "s18")]
    assert episode.peak_cars == 73 and episode.peak_scene_id == "s14"
    assert episode.scene_ids == ("s10", "s11", "s12", "s13", "s14", "s15")
    assert episode.closed_at == START + timedelta(days=18) and not episode.is_open


def test_a_surge_still_running_stays_open() -> None:
    (episode,) = surge_episodes(points([*QUIET, 35, 45, 50, 12]), close_after=3)
    assert episode.is_open and episode.closed_scene_id is None
    assert [t.kind for t in episode.transitions] == ["opened", "updated", "updated"]


def test_cloudy_days_neither_open_nor_close_an_episode() -> None:
    counts = [*QUIET, 80, 35, 45, 3, 2, 4, 50, 12, 11, 10]
    valid = [1.0] * len(counts)
    valid[10] = 0.3  # a spurious high count under cloud: opens nothing
    valid[13] = valid[14] = valid[15] = 0.2  # clouds hide the yard mid-surge: closes nothing
    (episode,) = surge_episodes(points(counts, valid), close_after=3)
    assert episode.opened_scene_id == "s11"
    assert episode.scene_ids == ("s11", "s12", "s16")
    assert episode.closed_scene_id == "s19"


def test_a_gap_in_acquisitions_does_not_split_or_close_an_episode() -> None:
    counts = [*QUIET, 40, 45, 50, 48, 12, 11, 10]
    days = [*range(10), 10, 11, 40, 41, 42, 43, 44]  # a month without scenes mid-surge
    (episode,) = surge_episodes(points(counts, days=days), close_after=3)
    assert episode.scene_ids == ("s10", "s11", "s12", "s13") and episode.closed_scene_id == "s16"


def test_two_surges_are_two_episodes_and_quiet_series_has_none() -> None:
    counts = [*QUIET, 40, 45, 11, 12, 10, 9, 50, 11, 10, 12]
    first, second = surge_episodes(points(counts), close_after=3)
    assert (first.opened_scene_id, first.closed_scene_id) == ("s10", "s14")
    assert (second.opened_scene_id, second.closed_scene_id) == ("s16", "s19")
    assert surge_episodes(points(QUIET * 3)) == []


def test_small_growth_is_not_news() -> None:
    counts = [*QUIET, 40, 44, 43, 41, 12]  # +10 % is not more than 10 %
    (episode,) = surge_episodes(points(counts), min_growth=0.1)
    assert [(t.kind, t.scene_id) for t in episode.transitions] == [("opened", "s10")]
    assert (episode.peak_cars, episode.peak_scene_id) == (44, "s11")  # the peak is still tracked


def test_live_runs_see_the_same_transitions_as_a_backfill() -> None:
    """A run after each new scene only ever adds transitions to what earlier runs saw."""
    counts = [*QUIET, 35, 45, 40, 60, 73, 70, 11, 9, 12, 10, 44, 50, 12, 10, 11]
    full = points(counts)
    backfill = [t for e in surge_episodes(full) for t in e.transitions]
    seen: list[object] = []
    for n in range(1, len(full) + 1):
        live = [t for e in surge_episodes(points(counts[:n])) for t in e.transitions]
        assert live[: len(seen)] == seen  # nothing retracted, nothing reordered
        seen = live
    assert seen == backfill


def test_low_confidence_scenes_are_unreliable_and_close_after_is_checked() -> None:
    assert not is_reliable(1.0, ("low_registration_confidence",), 0.6)
    assert not is_reliable(0.5, (), 0.6) and is_reliable(0.9, ("partial_coverage",), 0.6)
    with pytest.raises(ValueError, match="close_after must be at least 1"):
        surge_episodes([], close_after=0)
