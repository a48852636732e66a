"""Surge flags on series with known surges, gaps and cloudy days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from railwatch.core.surge import SurgeParams, flag_surges


def series(counts: list[float]) -> list[datetime]:
    return [datetime(2023, 9, 1, tzinfo=UTC) + timedelta(days=i) for i in range(len(counts))]


def test_quiet_series_raises_nothing() -> None:
    rng = np.random.default_rng(0)
    counts = list(rng.integers(5, 21, size=60))
    flags = flag_surges(series(counts), counts, [1.0] * 60, history_max=20)
    assert not any(f.surge for f in flags)


def test_surge_is_flagged_and_does_not_raise_its_own_baseline() -> None:
    counts = [10, 12, 8, 15, 9, 11, 13, 10, 12, 14, 35, 45, 60, 73, 70, 11, 9, 12]
    flags = flag_surges(series(counts), counts, [1.0] * len(counts), history_max=20)
    assert [f.surge for f in flags] == [False] * 10 + [True] * 5 + [False] * 3
    assert flags[13].ratio is not None and abs(flags[13].ratio - 73 / 20) < 1e-9
    assert flags[14].baseline == flags[10].baseline  # surge scenes stay out of the baseline


def test_cloudy_scene_never_flags_and_empty_day_is_not_a_surge() -> None:
    counts = [10, 12, 8, 15, 9, 11, 0, 80, 12]
    valid = [1.0] * 9
    valid[7] = 0.3  # a cloud-covered day with a spurious high count
    flags = flag_surges(series(counts), counts, valid, history_max=20)
    assert not any(f.surge for f in flags)


def test_without_history_max_needs_enough_history() -> None:
    counts = [10, 30, 12, 11, 9, 10, 12, 60]
    flags = flag_surges(series(counts), counts, [1.0] * 8, params=SurgeParams(min_history=5))
    assert not flags[1].surge  # one earlier scene is not a baseline
    assert flags[7].surge and flags[7].ratio == 2.0  # the unflagged 30 is the max so far


def test_gaps_only_use_scenes_inside_the_window() -> None:
    counts = [50] * 6 + [12] * 6
    times = series(counts[:6]) + [t + timedelta(days=200) for t in series(counts[6:])]
    counts.append(40)
    times.append(times[-1] + timedelta(days=1))
    flags = flag_surges(times, counts, [1.0] * len(counts), params=SurgeParams(window_days=60))
    assert flags[-1].baseline == 12  # the old 50s are outside the 60-day window
    assert not flags[-1].surge  # ...but still inside the 5-year max: 40 < 1.5 × 50


def test_an_onset_that_misses_the_ratio_does_not_hide_the_rest_of_the_surge() -> None:
    """Noisy quiet days (max 30) make the onset only 1.47× the max; it must not raise the bar."""
    quiet = [16, 20, 15, 24, 25, 17, 22, 29, 30, 30, 2, 20, 22, 20, 7, 10]
    surge = [44, 48, 46, 47, 57, 61, 60, 64, 74, 74, 76]
    counts = quiet + surge
    flags = flag_surges(series(counts), counts, [1.0] * len(counts), history_max=20)
    assert not any(f.surge for f in flags[: len(quiet)])
    assert not flags[len(quiet)].surge  # 44 / 30 < 1.5: the onset itself is missed...
    assert all(f.surge for f in flags[len(quiet) + 4:])  # ...but not the surge that follows
    assert all(f.baseline == flags[len(quiet)].baseline for f in flags[len(quiet):])
    tuned = flag_surges(series(counts), counts, [1.0] * len(counts), history_max=20,
                        params=SurgeParams(ratio_threshold=1.3, z_threshold=3.0))
    assert [f.surge for f in tuned] == [False] * len(quiet) + [True] * len(surge)


def test_an_onset_that_misses_the_z_test_does_not_raise_the_bar() -> None:
    """A quiet yard whose busy days reach 20 (a wide spread upwards): the first loaded day is
    1.55× the known maximum but only 2.7 robust sigmas up. It is not flagged, but it must not
    become the maximum that the next, fuller days are compared with."""
    counts = [20, 10, 19, 11, 20, 15, 19, 10, 20, 11, 15, 31, 40, 42, 75]
    flags = flag_surges(series(counts), counts, [1.0] * len(counts), history_max=20,
                        params=SurgeParams(ratio_threshold=1.3))
    assert not any(f.surge for f in flags[:11])
    assert flags[11].robust_z is not None and flags[11].robust_z < 3.0 and not flags[11].surge
    assert all(f.surge for f in flags[12:])
    assert flags[14].ratio is not None and abs(flags[14].ratio - 75 / 20) < 1e-9


def test_days_when_the_yard_empties_do_not_hide_a_surge() -> None:
    """The demo yard's quiet weeks hold empty days (2, 5, 8 cars): a surge is measured against
    how far quiet days stray above the baseline, so the first loaded day (31 cars, 1.55× the
    known maximum) is 4.5 sigmas up; with the two-sided MAD it was 2.8 and missed."""
    quiet = [17, 17, 7, 15, 14, 20, 2, 20, 15, 14, 5, 8]
    counts = [*quiet, 31, 31, 35, 64]
    flags = flag_surges(series(counts), counts, [1.0] * len(counts), history_max=20,
                        params=SurgeParams(ratio_threshold=1.3))
    assert not any(f.surge for f in flags[: len(quiet)])
    first = flags[len(quiet)]
    assert first.surge and first.robust_z is not None and first.robust_z > 4.0
    assert first.spread is not None and abs(first.spread - 1.4826 * 2.5) < 1e-9


def test_a_count_above_the_maximum_even_at_its_low_end_needs_no_z() -> None:
    """A yard that swings between empty and its five-year maximum (simulated Tumangang's true
    counts, Sept 2023) has a wide spread: its loading day, 34 cars for a maximum of 20, is z 2.4.
    With its interval wholly above the maximum it is a surge; a count whose low end reaches down
    to the maximum still needs the z test."""
    quiet = [15, 20, 20, 20, 20, 0, 12, 15, 13, 5, 7]
    counts = [*quiet, 34, 34, 42]
    times, valid = series(counts), [1.0] * len(counts)
    params = SurgeParams(ratio_threshold=1.3)
    plain = flag_surges(times, counts, valid, history_max=20, params=params)
    loading = plain[len(quiet)]
    assert not loading.surge and loading.robust_z is not None and loading.robust_z < 3.0
    lows = [c - 4 for c in counts]  # the loading day: 30 to 38
    flags = flag_surges(times, counts, valid, history_max=20, params=params, lows=lows)
    assert [f.surge for f in flags] == [False] * len(quiet) + [True] * 3
    doubtful = [*lows[:-3], 20, 20, 20]  # the same counts, intervals reaching down to 20
    assert [f.surge for f in flag_surges(times, counts, valid, history_max=20, params=params,
                                         lows=doubtful)] == [f.surge for f in plain]


def flags_by_definition(times: list[datetime], counts: list[float], valid: list[float],
                        history_max: float | None, p: SurgeParams,
                        lows: list[float] | None = None) -> list[tuple[bool, float | None,
                                                                       float | None]]:
    """The surge test read straight off its definition, every scene against a scan of all
    earlier ones (quadratic; the oracle of the incremental version)."""
    reliable = [v >= p.min_valid_fraction for v in valid]
    material: list[int] = []  # reliable and not elevated, decided scene by scene
    out: list[tuple[bool, float | None, float | None]] = []
    for i, when in enumerate(times):
        earlier = [j for j in material if times[j] < when]
        recent = [counts[j] for j in earlier if when - times[j] <= timedelta(days=p.window_days)]
        peaks = [counts[j] for j in earlier if when - times[j] <= timedelta(days=p.lookback_days)]
        peaks += [] if history_max is None else [history_max]
        baseline = float(np.median(recent)) if recent else None
        ratio = counts[i] / max(peaks) if peaks and max(peaks) else None
        z = None
        if baseline is not None:
            spread = max(1.4826 * float(np.median([c - baseline for c in recent if c >= baseline])),
                         p.mad_floor_cars)
            z = (counts[i] - baseline) / spread
        enough = len(recent) >= p.min_history or history_max is not None
        over = reliable[i] and enough and ratio is not None and ratio >= p.ratio_threshold
        beyond = lows is not None and bool(peaks) and lows[i] > max(peaks)
        surge = over and (z is None or z >= p.z_threshold or beyond)
        elevated = over or (len(recent) >= p.min_history and z is not None and z >= p.z_threshold)
        if reliable[i] and not elevated:
            material.append(i)
        out.append((surge, ratio, baseline))
    return out


def test_flags_match_the_definition_on_random_series() -> None:
    """Gaps, same-time scenes, cloudy days, empty days and surges of every size, with and
    without a known maximum and with windows short enough to slide: the incremental walk gives
    the definition's flags, ratios and baselines."""
    rng = np.random.default_rng(7)
    surges = ties = 0
    for case in range(40):
        n = int(rng.integers(1, 160))
        steps = rng.choice([0, 1, 1, 1, 2, 5, 30], size=n)  # 0: a second scene at the same time
        times = [datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=int(d)) for d in np.cumsum(steps)]
        counts = [float(c) for c in rng.integers(0, 25, size=n)]
        for start in rng.integers(0, n, size=3):  # surges
            for k in range(int(start), min(n, int(start) + int(rng.integers(1, 8)))):
                counts[k] += float(rng.integers(10, 80))
        valid = [float(v) for v in rng.choice([0.2, 0.7, 1.0, 1.0], size=n)]
        history_max = [None, 0.0, 20.0][case % 3]
        params = SurgeParams(window_days=int(rng.choice([7, 20, 60])),
                             lookback_days=int(rng.choice([30, 90, 5 * 365])),
                             min_history=int(rng.choice([1, 5])))
        lows = None if case % 2 else [c - float(rng.integers(0, 12)) for c in counts]
        flags = flag_surges(times, counts, valid, history_max=history_max, params=params, lows=lows)
        expected = flags_by_definition(times, counts, valid, history_max, params, lows)
        assert [(f.surge, f.ratio, f.baseline) for f in flags] == expected, f"case {case}"
        surges += sum(f.surge for f in flags)
        ties += int((steps[1:] == 0).sum())
    assert surges > 40 and ties > 40  # the cases exercise both
