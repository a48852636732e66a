"""Quicklook track labels: sidings a pixel or two apart get labels that do not overlap."""

from __future__ import annotations

import numpy as np

from railwatch.quicklook import LABEL_GAP_PT, label_lifts


def test_labels_of_sidings_starting_side_by_side_are_spread_apart() -> None:
    pt_per_px = 2.0
    starts = {"t1": np.array([100.0, 200.0]), "t2": np.array([100.5, 201.8]),
              "t3": np.array([101.0, 203.6]), "main": np.array([10.0, 260.0])}
    lifts = label_lifts(starts, pt_per_px)
    shown = {k: -starts[k][1] * pt_per_px + lifts[k] for k in starts}
    sidings = sorted(shown[k] for k in ("t1", "t2", "t3"))
    assert min(np.diff(sidings)) >= LABEL_GAP_PT - 1e-9
    assert lifts["t1"] == 0.0  # the top one stays at its track
    assert lifts["main"] == 0.0  # a label far from the others is not moved


def test_labels_already_apart_are_not_moved() -> None:
    starts = {"a": np.array([50.0, 100.0]), "b": np.array([50.0, 130.0])}
    assert label_lifts(starts, 1.0) == {"a": 0.0, "b": 0.0}
