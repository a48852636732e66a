"""Registration and radiometric normalisation recover known shifts, gains and offsets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from railwatch.core import DetectorParams, align_to_reference, estimate_alignment
from railwatch.core.registration import ReferenceTiles, fill_invalid, spline_shift

from .synth import Train, Yard

SHIFTS = [(0.0, 0.0), (1.37, -0.62), (-2.45, 1.8), (0.5, 0.5), (-4.2, -3.1)]


@pytest.mark.parametrize("shift", SHIFTS)
def test_recovers_subpixel_shift(yard: Yard, reference, shift) -> None:
    # the scene has cars the reference lacks and a different haze; the shift is what the
    # image content is displaced by relative to the reference's content
    ref_shift = (0.2, -0.15)
    image, valid = yard.render(
        (Train(1, 40.0, 8, "dark"), Train(3, 200.0, 6, "bright")), shift_px=shift,
        gain=0.9, offset=150.0, seed=11,
    )
    _, _, al = align_to_reference(image, valid, *reference)
    expected = (ref_shift[0] - shift[0], ref_shift[1] - shift[1])
    assert abs(al.shift_px[0] - expected[0]) < 0.3
    assert abs(al.shift_px[1] - expected[1]) < 0.3
    assert al.confidence > 0.5


def test_recovers_gain_and_offset(yard: Yard, reference) -> None:
    gains = np.array([0.85, 0.9, 1.05, 1.15])
    offsets = np.array([220.0, 150.0, 60.0, -40.0])
    image, valid = yard.render((Train(2, 60.0, 12, "rust"),), shift_px=(0.2, -0.15),
                               gain=tuple(gains), offset=tuple(offsets), seed=12)
    aligned, aligned_valid, al = align_to_reference(image, valid, *reference)
    # reference ≈ gain * image + offset, the inverse of what was applied
    np.testing.assert_allclose(al.gains, 1.0 / gains, rtol=0.02)
    np.testing.assert_allclose(al.offsets, -offsets / gains, atol=40.0)
    ref, ref_valid = reference
    both = aligned_valid & ref_valid
    assert np.median(np.abs(aligned - ref)[:, both]) < 40.0  # noise level of the two renders


def test_noise_gives_low_confidence() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 90, 110)).astype(np.float32)
    b = rng.normal(size=(4, 90, 110)).astype(np.float32)
    ones = np.ones((90, 110), dtype=bool)
    _, _, al = align_to_reference(a, ones, b, ones)
    assert al.confidence < 0.3


def test_shifted_in_edge_is_invalid(yard: Yard, reference) -> None:
    image, valid = yard.render((), shift_px=(-2.0, 0.0), seed=13)
    _, aligned_valid, al = align_to_reference(image, valid, *reference)
    assert al.shift_px[0] > 1.5
    # the image is moved right by ~2 px to match: its first columns have no source pixels
    assert not aligned_valid[:, 0].any()
    assert aligned_valid[10:-10, 10:-10].all()


def test_shape_mismatch_is_an_error(reference) -> None:
    ref, ref_valid = reference
    with pytest.raises(ValueError, match="shape"):
        align_to_reference(ref[:, :-1], ref_valid[:-1], ref, ref_valid)


@pytest.mark.parametrize("dx, dy", [(0.3, -2.7), (-5.9, 4.2), (1.0, 0.0), (0.0, 0.5), (-0.25, 7.75)])
def test_separable_spline_shift_equals_ndimage(dx: float, dy: float) -> None:
    """The separable shift gives scipy.ndimage.shift's cubic spline, edges included."""
    rng = np.random.default_rng(7)
    image = ndimage.gaussian_filter(rng.normal(1000.0, 300.0, (3, 61, 47)), (0, 1, 1)).astype(np.float32)
    expected = np.stack([ndimage.shift(b, (dy, dx), order=3, mode="nearest") for b in image])
    got = spline_shift(image, dx, dy)
    assert got.dtype == np.float32 and got.shape == image.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)
    assert not np.allclose(got, image, atol=1.0)  # it did move


def test_holes_are_filled_from_their_nearest_clear_pixel() -> None:
    """Only the holes' bounding box is searched: the same fill as over the whole image, for
    holes scattered up to the image's edges."""
    rng = np.random.default_rng(4)
    image = rng.normal(1000.0, 100.0, (2, 40, 50)).astype(np.float32)
    valid = np.ones((40, 50), dtype=bool)
    valid[5:9, 30:41] = False
    valid[20, 0] = valid[39, 49] = valid[25:27, 12] = False
    rows, cols = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    expected = image[:, rows, cols]
    got = fill_invalid(image, valid)
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(got[:, valid], image[:, valid])


def test_kept_reference_tiles_give_the_same_alignment(yard: Yard, reference) -> None:
    """A task aligns many clips to one reference and keeps the reference's side: the same
    alignment as from scratch, whatever each clip's mask; other arrays get fresh tiles."""
    ref, ref_valid = reference
    params = DetectorParams(registration_patch_px=32)  # several tiles on the small yard
    tiles = ReferenceTiles(ref, ref_valid, params)
    for seed, shift in enumerate(SHIFTS):
        image, valid = yard.render((Train(1, 40.0, 8, "dark"),), shift_px=shift, seed=20 + seed)
        valid[: 10 * seed] = False  # a cloud over a different part each time
        alone = estimate_alignment(image, valid, ref, ref_valid, 6.0, params)
        assert estimate_alignment(image, valid, ref, ref_valid, 6.0, params, tiles) == alone
    assert len(tiles._tiles) > params.registration_patches  # the masks chose other tiles too
    other = ref + np.float32(50.0) * np.random.default_rng(1).normal(size=ref.shape).astype(np.float32)
    image, valid = yard.render((), shift_px=(1.0, 0.5), seed=30)
    assert estimate_alignment(image, valid, other, ref_valid, 6.0, params, tiles) == \
        estimate_alignment(image, valid, other, ref_valid, 6.0, params)


def test_a_clear_image_is_not_filled_but_its_nans_become_zero() -> None:
    """Nothing to fill: the image's own values (no copy needed), except a NaN, which would smear
    through a resampling, made 0 in a copy; the caller's image is never changed."""
    image = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5)
    clear = np.ones((6, 5), dtype=bool)
    assert np.array_equal(fill_invalid(image, clear), image)
    image[1, 2, 3] = np.nan
    filled = fill_invalid(image, clear)
    assert filled[1, 2, 3] == 0 and np.isnan(image[1, 2, 3])
    assert np.array_equal(np.delete(filled.ravel(), 2 * 5 + 1 * 30 + 3),
                          np.delete(image.ravel(), 2 * 5 + 1 * 30 + 3))
