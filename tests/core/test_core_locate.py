"""Absolute track location: a misregistered image (or reference) is put back on the AOI geometry."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.core.locate import locate_tracks, shift_tracks

from .synth import GSD_M, Train, Yard


def _across(yard: Yard, shift: tuple[float, float]) -> float:
    """The across-track component (pixels) of a displacement."""
    a = np.deg2rad(yard.angle_deg)
    return float(shift[0] * np.sin(a) + shift[1] * np.cos(a))


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.9, 1.6), (-1.4, -0.7), (2.1, -0.3)])
def test_displaced_tracks_are_found_across(yard: Yard, shift: tuple[float, float]) -> None:
    image, valid = yard.render((Train(1, 60.0, 8, "dark"),), shift_px=shift, seed=31)
    loc = locate_tracks([(image, valid)], yard.tracks(), GSD_M)
    assert abs(_across(yard, loc.shift_px) - _across(yard, shift)) < 0.35, (loc, shift)
    assert loc.confidence > 0.2


def test_two_views_add_up_and_shifted_lines_move() -> None:
    yard = Yard(seed=3)
    shift = (0.4, 1.8)
    views = [yard.render((), shift_px=shift, seed=s) for s in (41, 42)]
    loc = locate_tracks(views, yard.tracks(), GSD_M)
    assert abs(_across(yard, loc.shift_px) - _across(yard, shift)) < 0.35
    moved = shift_tracks(yard.tracks(), loc.shift_px)
    assert np.allclose(moved[0].parts[0] - yard.tracks()[0].parts[0], loc.shift_px)


def test_nothing_to_see_gives_no_confidence(yard: Yard) -> None:
    image, _ = yard.render((), seed=5)
    loc = locate_tracks([(image, np.zeros(image.shape[1:], dtype=bool))], yard.tracks(), GSD_M)
    assert loc.shift_px == (0.0, 0.0) and loc.confidence == 0.0
