"""Absolute track location: a misregistered image (or reference) is put back on the AOI geometry."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.core import DetectorParams, TrackLine
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


def _fine_bed(shift_rows: float, seed: int) -> tuple[np.ndarray, list[TrackLine]]:
    """A 0.5 m image of four sidings 5.3 m apart at 18° on a ballast bed 3 m wider than the
    outer ones, on textured ground; the content is displaced `shift_rows` px down."""
    gsd, rng = 0.5, np.random.default_rng(seed)
    rows, cols = np.mgrid[0:200, 0:300].astype(np.float64) + 0.5
    slope = np.tan(np.deg2rad(18.0))
    offsets = 40.0 + np.arange(4) * 5.3 / gsd / np.cos(np.deg2rad(18.0))  # rows at column 0
    lines = [TrackLine(f"s{i}", (np.array([[20.0, o + 20.0 * slope], [280.0, o + 280.0 * slope]]),))
             for i, o in enumerate(offsets)]
    # signed distance across the tracks from the first centreline, in pixels
    across = ((rows - shift_rows) - (offsets[0] + cols * slope)) * np.cos(np.deg2rad(18.0))
    edge, span = 3.0 / gsd, 3 * 5.3 / gsd
    inside = np.clip(np.minimum(across + edge, span + edge - across) + 0.5, 0.0, 1.0)  # soft edge
    ground = np.stack([900.0 + 60.0 * rng.standard_normal(rows.shape) for _ in range(4)])
    image = ground + inside * np.array([350.0, 380.0, 420.0, 300.0])[:, None, None]
    return image.astype(np.float32), lines


def test_a_bed_many_pixels_wide_is_located_with_confidence() -> None:
    """At 0.5 m the bed's match is a peak some ten pixels wide: a point a pixel and a half
    from its top is still on it, not a second place the tracks could be."""
    image, lines = _fine_bed(1.4, seed=3)
    loc = locate_tracks([(image, np.ones(image.shape[1:], dtype=bool))], lines, 0.5)
    across = loc.shift_px[1] * np.cos(np.deg2rad(18.0)) - loc.shift_px[0] * np.sin(np.deg2rad(18.0))
    assert abs(across - 1.4 * np.cos(np.deg2rad(18.0))) < 0.3, loc
    assert loc.confidence >= 0.9, loc


@pytest.mark.parametrize("ground", ["noise", "flat"])
def test_ground_without_a_bed_is_not_a_confident_location(ground: str) -> None:
    """Where no bed shows, whatever offset matches best is no location: the match itself is
    weak, however alone its peak stands (the geolocation prior alone makes one peak)."""
    _, lines = _fine_bed(0.0, seed=4)
    rng = np.random.default_rng(5)
    scale = 60.0 if ground == "noise" else 1.0
    image = (900.0 + scale * rng.standard_normal((4, 200, 300))).astype(np.float32)
    loc = locate_tracks([(image, np.ones(image.shape[1:], dtype=bool))], lines, 0.5)
    assert loc.confidence < DetectorParams().min_registration_confidence, loc
