"""From a track's z-scores to occupied stretches (`occupancy.segments`) on hand-made scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from railwatch.core.occupancy import TrackScore, score_tracks, segments
from railwatch.core.types import DetectorParams, TrackProfile

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


def test_an_empty_track_in_a_loaded_yard_is_scored_against_the_ballast_noise() -> None:
    """Five tracks full of cars whose roofs vary in brightness (the yard's spread: one wide,
    band-correlated direction) and one empty track with the same sensor noise: against the
    bulk's shape alone the empty track reads as changed nearly everywhere; floored at a tenth
    of the local noise in every direction, at most on about half of it (what is left, the
    neighbour model and the segments' rules handle), while every car still stands out."""
    rng = np.random.default_rng(3)
    ballast = np.array([1100.0, 1150.0, 1200.0, 1600.0])
    colour = np.array([0.6, 0.55, 0.5, 0.45])  # a roof, as a share of the ballast
    n, car = 600, 15
    profiles, background = {}, {}
    for i in range(6):
        k = f"t{i + 1}"
        values = ballast * (1 + rng.normal(0, 0.011, (n, 4)))  # ≈ 12-18 DN, band by band
        if i < 5:
            brightness = np.repeat(rng.uniform(0.7, 1.3, n // car), car)
            values = ballast * colour * brightness[:, None] + rng.normal(0, 12.0, (n, 4))
        profiles[k] = TrackProfile(k, 1.0, values.astype(np.float32), np.ones(n, dtype=bool))
        background[k] = TrackProfile(k, 1.0, np.tile(ballast, (n, 1)).astype(np.float32),
                                     np.ones(n, dtype=bool))
    p = DetectorParams()
    off, _ = score_tracks(profiles, background, replace(p, noise_local_floor=0.0))
    assert np.mean(off["t6"].z >= p.low_z) > 0.9  # the bulk's shape alone: the test can fail
    scores, _ = score_tracks(profiles, background, p)
    assert np.mean(scores["t6"].z >= p.low_z) < 0.6
    assert np.all(scores["t1"].z >= p.high_z)
