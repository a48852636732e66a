"""From a track's z-scores to occupied stretches (`occupancy.segments`) on hand-made scores."""

from __future__ import annotations

import numpy as np

from railwatch.core.occupancy import TrackScore, segments
from railwatch.core.types import DetectorParams

PITCH_M = 14.5
GSD_M = 3.0
LENGTH = 400  # samples of 1 m


def score(stretches: list[tuple[int, int, float]]) -> TrackScore:
    """A track whose z is `z` over each (start, stop, z) and 0.5 elsewhere; the difference
    spectrum is the same vector scaled by z (what the end refinement projects on)."""
    z = np.full(LENGTH, 0.5)
    for a, b, level in stretches:
        z[a:b] = level
    diff = z[:, None] * np.array([[1.0, 1.0, 1.0, 1.0]])
    usable = np.ones(LENGTH, dtype=bool)
    return TrackScore("t1", 1.0, usable, diff, z, np.zeros((0, 2)), np.full((LENGTH, 4), 100.0))


def occupied(stretches: list[tuple[int, int, float]]) -> list[tuple[float, float]]:
    p = DetectorParams()
    return segments(score(stretches), np.zeros(LENGTH, dtype=bool), np.eye(4), PITCH_M, GSD_M, p)


def test_a_lone_faint_blip_is_not_a_car() -> None:
    """10 m that barely pass the seed threshold, far from any train: a blip (a tone change,
    a leak), not a car; the same stretch standing out clearly is one car."""
    p = DetectorParams()
    faint = 0.5 * (p.high_z + p.short_min_z)
    assert occupied([(200, 210, faint)]) == []
    (seg,) = occupied([(200, 210, 2 * p.short_min_z)])
    assert abs((seg[1] - seg[0]) - 10.0) <= 2.0


def test_faint_stretches_in_a_train_or_long_ones_count() -> None:
    """The same faint 10 m beside a train (a car whose roof nearly matches the ballast) and a
    faint stretch several cars long are kept: the train and the length back them."""
    p = DetectorParams()
    faint = 0.5 * (p.high_z + p.short_min_z)
    segs = occupied([(100, 160, 3 * p.short_min_z), (170, 180, faint)])
    assert len(segs) == 2 and abs(segs[1][0] - 170.0) <= 2.0
    (long_seg,) = occupied([(200, 260, faint)])
    assert abs((long_seg[1] - long_seg[0]) - 60.0) <= 2.0
