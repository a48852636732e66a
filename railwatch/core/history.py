"""The per-position median of a stack of earlier scenes' track profiles: one track's background.

`background_from_history` (profiles in hand) and the background model (profiles kept stacked,
one array per track, a scene's window a slice of it) both end here, so both give the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.types import BoolArray, TrackProfile, no_sides


def track_background(
    track_id: str,
    step_m: float,
    positions: npt.NDArray[np.float64],
    values: npt.NDArray[np.float32],
    valid: BoolArray,
    sides: npt.NDArray[np.float32] | None,
    min_valid: int,
) -> TrackProfile:
    """The median background of one track from N scenes: `values` (N, S, bands), `valid` (N, S),
    `sides` (N, S, 2, bands) NaN where not valid (None: not every scene has them). A position
    (or side value) needs min(`min_valid`, N) valid samples."""
    count = valid.sum(axis=0)
    least = min(min_valid, len(valid))
    median = median_of_valid(values, valid[:, :, None])
    ok = count >= least
    median[~ok] = np.nan
    side_median = no_sides()
    if sides is not None:
        finite = np.isfinite(sides)
        side_median = median_of_valid(sides, finite)
        side_median[finite.sum(axis=0) < least] = np.nan
    return TrackProfile(track_id=track_id, step_m=step_m, values=median, valid=ok,
                        positions=positions, covered=count > 0, sides=side_median)


def median_of_valid(stack: npt.NDArray[Any], ok: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """The exact median down axis 0 of `stack`'s entries where `ok` (broadcast to it), as float32:
    the middle one, or the mean of the middle two, of the valid entries; NaN where none is.

    Each position's values are sorted side by side, the invalid ones NaN and so last (numpy's
    vectorised sort of a contiguous last axis: ≈ 1.3× faster than sorting down axis 0, and
    ≈ 5× faster here than a compiled quickselect, whose branches the random values defeat)."""
    ordered = np.where(ok, stack, np.float32(np.nan)).astype(np.float32, copy=False)
    ordered = np.ascontiguousarray(np.moveaxis(ordered, 0, -1))
    ordered.sort(axis=-1)
    count = np.broadcast_to(ok.sum(axis=0), stack.shape[1:])
    lo = np.maximum(count - 1, 0) // 2
    hi = np.minimum(count // 2, stack.shape[0] - 1)
    low = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    return np.asarray((low + high) / 2, dtype=np.float32)
