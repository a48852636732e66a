"""A reference image of an AOI from several clear clips taken on different dates.

Cars move between dates, so a per-pixel median over dates is mostly the empty yard. Each date is
misregistered by a few metres; registering every date to the current median and taking the
median again converges to the consensus position (the errors are about zero-mean), and the
images are radiometrically normalised to it on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.radiometry import apply_radiometry, fit_radiometry
from railwatch.core.registration import estimate_alignment, shift_image
from railwatch.core.robust import nanmedian_of_stack
from railwatch.core.types import Alignment, BoolArray, DetectorParams

# rows of the per-pixel median at a time: the dates' stack of a strip, not of the whole grid
# (five 0.5 m clips of Tumangang, 4 × 3,863 × 3,928 px each: normalised, masked and stacked
# whole, the composite's peak memory was 6.1 GB above its inputs' and 3.0 GB now, 80 → 57 s;
# a 3 m clip of ≈ 650 rows is three strips)
MEDIAN_STRIP_ROWS = 256

Radiometry = tuple[tuple[float, ...], tuple[float, ...]]  # per band: gains, offsets


def _median(
    images: Sequence[npt.NDArray[Any]], valids: Sequence[BoolArray],
    radiometry: Sequence[Radiometry], min_samples: int,
) -> tuple[npt.NDArray[np.float32], BoolArray]:
    """Per pixel, the median of the dates that saw it clear, each normalised by its
    `radiometry`, where at least `min_samples` did (0 elsewhere), and where that is; a strip
    of rows at a time (the same values as whole images, without a normalised copy of each)."""
    bands, height, width = images[0].shape
    med = np.zeros((bands, height, width), dtype=np.float32)
    ok = np.zeros((height, width), dtype=bool)
    for top in range(0, height, MEDIAN_STRIP_ROWS):
        rows = slice(top, top + MEDIAN_STRIP_ROWS)
        stack = np.stack([np.where(v[None, rows], apply_radiometry(im[:, rows], *rad), np.nan)
                          for im, v, rad in zip(images, valids, radiometry, strict=True)])
        ok[rows] = np.sum(np.stack([v[rows] for v in valids]), axis=0) >= min_samples
        med[:, rows] = np.where(ok[None, rows], nanmedian_of_stack(stack), 0.0)
    return med, ok


def build_composite(
    images: Sequence[npt.NDArray[Any]],
    valids: Sequence[BoolArray],
    params: DetectorParams | None = None,
    max_shift_px: float = 6.0,
) -> tuple[npt.NDArray[np.float32], BoolArray, list[Alignment]]:
    """(composite, valid, per-image Alignment onto the composite) from clips on one grid.

    A pixel of the composite is valid where at least min(len(images), composite_min_samples)
    dates saw it clear, so one date's car (or cloud) cannot become the background alone.
    """
    p = params or DetectorParams()
    if not images:
        raise ValueError("build_composite needs at least one image")
    imgs = [np.asarray(im, dtype=np.float32) for im in images]
    vals = [np.asarray(v, dtype=bool) for v in valids]
    if len(imgs) != len(vals):
        raise ValueError("images and valids differ in number")
    shape = imgs[0].shape
    if any(im.shape != shape for im in imgs) or any(v.shape != shape[1:] for v in vals):
        raise ValueError("all images and masks must be on the same grid")
    min_samples = min(len(imgs), p.composite_min_samples)
    # start: radiometry of every date matched to the clearest one, no shifts
    pivot = int(np.argmax([v.sum() for v in vals]))
    start = [fit_radiometry(im, v, imgs[pivot], vals[pivot], p) for im, v in zip(imgs, vals, strict=True)]
    composite, valid = _median(imgs, vals, start, min_samples)
    alignments = [Alignment.identity(shape[0]) for _ in imgs]
    usable = [v & np.isfinite(im).all(axis=0) for im, v in zip(imgs, vals, strict=True)]
    # the shift estimate moves in steps of a twentieth of a pixel and often repeats from one
    # iteration to the next: an image already moved by that shift is not moved again
    moved: dict[int, tuple[tuple[float, float], npt.NDArray[np.float32], BoolArray]] = {}
    for _ in range(p.composite_iterations):
        aligned, aligned_valid, alignments = [], [], []
        for i, (im, v) in enumerate(zip(imgs, usable, strict=True)):
            al = estimate_alignment(im, v, composite, valid, max_shift_px, p)
            if i not in moved or moved[i][0] != al.shift_px:
                moved[i] = (al.shift_px, *shift_image(im, v, *al.shift_px))
            _, moved_image, moved_valid = moved[i]
            aligned.append(moved_image)
            aligned_valid.append(moved_valid)
            alignments.append(al)
        composite, valid = _median(aligned, aligned_valid, [(a.gains, a.offsets) for a in alignments],
                                   min_samples)
    return composite, valid, alignments
