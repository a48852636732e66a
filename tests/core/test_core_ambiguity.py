"""The count interval covers the reading the neighbour model did not pick."""

from __future__ import annotations

import numpy as np

from railwatch.core.ambiguity import doubtful_cars
from railwatch.core.occupancy import TrackScore
from railwatch.core.types import DetectorParams

BALLAST = np.array([1100.0, 1200.0, 1300.0, 1700.0])


def _track(name: str, offset_px: float, diff_by_sample: np.ndarray) -> TrackScore:
    n = diff_by_sample.shape[0]
    positions = np.column_stack([np.arange(n) / 3.0, np.full(n, offset_px)])  # 1 m steps, 3 m px
    background = np.tile(BALLAST, (n, 1))
    return TrackScore(name, 1.0, np.ones(n, dtype=bool), diff_by_sample, np.full(n, 6.0),
                      positions, background)


def test_shadow_like_stretch_beside_a_train_is_doubtful() -> None:
    n = 200
    car = np.tile([-600.0, -700.0, -200.0, -900.0], (n, 1))  # a rust-red roof: not shadow-like
    shadow = np.tile(-0.45 * BALLAST, (n, 1))  # every band darker by the same fraction
    scores = {"t1": _track("t1", 0.0, car), "t2": _track("t2", 5.3 / 3.0, shadow),
              "t3": _track("t3", 3 * 10.6 / 3.0, shadow)}  # 31.8 m away: beyond a shadow's reach
    kept = {"t1": [(20.0, 160.0)], "t2": [(20.0, 160.0)], "t3": [(20.0, 160.0)]}
    doubtful = doubtful_cars(scores, kept, 14.5, 3.0, DetectorParams())
    assert doubtful["t2"] > 9.0  # the whole stretch may be t1's shadow
    assert doubtful["t1"] == 0.0  # a red roof is no shadow
    assert doubtful["t3"] == 0.0  # nothing loaded within reach


def test_a_low_sun_reaches_past_the_next_siding() -> None:
    from railwatch.core.neighbours import shadow_reach_m

    p = DetectorParams()
    assert shadow_reach_m(None, p) == p.neighbour_max_m  # unknown: the next siding only
    assert shadow_reach_m(60.0, p) < 5.3  # summer noon: not even the next siding's centre
    assert 10.6 < shadow_reach_m(25.0, p) <= p.shadow_reach_max_m  # winter: the second siding


def test_a_stretch_read_as_a_shadow_may_still_be_a_train() -> None:
    """The other reading: strong evidence the neighbour model explained away (a dark train in a
    loaded neighbour's shadow looks like the shadow) widens the count's high end."""
    from railwatch.core.ambiguity import shadowed_cars

    n = 200
    scores = {"t1": _track("t1", 0.0, np.zeros((n, 4))), "t2": _track("t2", 1.8, np.zeros((n, 4)))}
    explained = {"t1": np.zeros(n, dtype=bool), "t2": np.zeros(n, dtype=bool)}
    explained["t2"][20:165] = True  # 145 m: ten cars' worth
    explained["t2"][180:185] = True  # 5 m: less than half a car, a leak's fringe
    out = shadowed_cars(scores, explained, 14.5, DetectorParams())
    assert out["t1"] == 0.0
    assert abs(out["t2"] - 10.0) < 1e-9
    weak = {k: TrackScore(s.track_id, s.step_m, s.usable, s.diff, np.full(n, 3.0), s.positions,
                          s.background) for k, s in scores.items()}
    assert shadowed_cars(weak, explained, 14.5, DetectorParams())["t2"] == 0.0  # weak: no train
