"""The per-position median of a stack of earlier scenes' track profiles: one track's background.

`background_from_history` (profiles in hand) and the background model (profiles kept stacked,
one array per track, a scene's window a slice of it) both end here, so both give the same bytes.
The model's windows move one clear scene at a time, so it keeps each window's values sorted
(`WindowMedians`) and moves them on instead of sorting every window again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.jit import compiled
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
    `sides` (N, S, 2, bands) NaN where not valid (None: not every scene has them)."""
    side_medians = None
    if sides is not None:
        finite = np.isfinite(sides)
        side_medians = (median_of_valid(sides, finite), finite.sum(axis=0))
    return background_profile(track_id, step_m, positions, valid,
                              median_of_valid(values, valid[:, :, None]), side_medians, min_valid)


def background_profile(
    track_id: str,
    step_m: float,
    positions: npt.NDArray[np.float64],
    valid: BoolArray,
    median: npt.NDArray[np.float32],
    sides: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None,
    min_valid: int,
) -> TrackProfile:
    """One track's background from its window's medians (changed in place) and, if any, its
    sides' medians with their counts of valid values: a position (or side value) needs
    min(`min_valid`, N) valid samples of the window's N (`valid` (N, S))."""
    count = valid.sum(axis=0)
    least = min(min_valid, len(valid))
    ok = count >= least
    median[~ok] = np.nan
    side_median = no_sides()
    if sides is not None:
        side_median, side_count = sides
        side_median[side_count < least] = np.nan
    return TrackProfile(track_id=track_id, step_m=step_m, values=median, valid=ok,
                        positions=positions, covered=count > 0, sides=side_median)


def median_of_valid(stack: npt.NDArray[Any], ok: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """The exact median down axis 0 of `stack`'s entries where `ok` (broadcast to it), as float32:
    the middle one, or the mean of the middle two, of the valid entries; NaN where none is.

    Each position's values are sorted side by side, the invalid ones NaN and so last (numpy's
    vectorised sort of a contiguous last axis: ≈ 1.3× faster than sorting down axis 0, and
    ≈ 5× faster here than a compiled quickselect, whose branches the random values defeat),
    then the middle read as `WindowMedians` reads it (`_middles`)."""
    ordered = np.where(ok, stack, np.float32(np.nan)).astype(np.float32, copy=False)
    ordered = np.ascontiguousarray(np.moveaxis(ordered, 0, -1))
    ordered.sort(axis=-1)
    count = np.broadcast_to(ok.sum(axis=0), stack.shape[1:]).astype(np.int64).reshape(-1)
    out = np.empty(count.shape, dtype=np.float32)
    _middles(ordered.reshape(len(count), stack.shape[0]), count, out)
    return out.reshape(stack.shape[1:])


class WindowMedians:
    """`median_of_valid` of windows [first:last) of one stack (N, ...), NaN where invalid (valid
    entries are finite: the profiles' contract). The last window's values stay sorted per
    position, so the next window a few entries on costs a removal and an insertion per position
    and entry instead of a sort (a 7-track yard's 60-scene window: 1.7 ms against 8.3). Not
    thread-safe: one per model, and a model serves one task."""

    def __init__(self, stack: npt.NDArray[np.float32]) -> None:
        self._shape = stack.shape[1:]
        self._entries = np.ascontiguousarray(stack, dtype=np.float32).reshape(len(stack), -1)
        self._window = (0, 0)
        self._ordered = np.empty((self._entries.shape[1], 0), dtype=np.float32)
        self._counts = np.zeros(self._entries.shape[1], dtype=np.int64)

    def median(self, first: int,
               last: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The per-position median of entries[first:last] and their valid counts (new arrays)."""
        was_first, was_last = self._window
        width = last - first
        if not (last - was_last == first - was_first and 0 <= first - was_first < width // 2):
            self._ordered = np.ascontiguousarray(self._entries[first:last].T)
            self._ordered.sort(axis=1)
            self._counts = np.isfinite(self._entries[first:last]).sum(axis=0, dtype=np.int64)
            was_first = first  # nothing to move on
        _move_on(self._ordered, self._counts, self._entries, was_first, first)
        self._window = (first, last)
        out = np.empty(self._entries.shape[1], dtype=np.float32)
        _middles(self._ordered, self._counts, out)
        return out.reshape(self._shape), self._counts.reshape(self._shape).copy()


@compiled
def _move_on(ordered: Any, counts: Any, entries: Any, was_first: int, first: int) -> None:
    """Per position (a row of `ordered`: its window's values sorted, its `counts` valid ones
    first, NaN after): the entries from `was_first` up to `first` leave the window and those
    as many past its end enter it, each where it belongs."""
    lanes, width = ordered.shape
    for lane in range(lanes):
        n = counts[lane]
        for step in range(was_first, first):
            n = _replace(ordered[lane], n, entries[step, lane], entries[step + width, lane])
        counts[lane] = n


@compiled
def _middles(ordered: Any, counts: Any, out: Any) -> None:
    """Per row of `ordered` (its `counts` valid values sorted first, NaN after): the middle
    one, or the mean of the middle two in float32; NaN where none is valid."""
    lanes, width = ordered.shape
    half = np.float32(0.5)
    for lane in range(lanes):
        n = counts[lane]
        if width == 0:
            out[lane] = np.nan
        else:
            out[lane] = (ordered[lane, max(n - 1, 0) // 2]
                         + ordered[lane, min(n // 2, width - 1)]) * half


@compiled
def _replace(row: Any, n: int, leaving: float, entering: float) -> int:
    """`row` (n valid values sorted, NaN after) without `leaving` and with `entering` (either
    NaN: none), still sorted; the new count. Only the values between the two places move."""
    gone, come = leaving == leaving, entering == entering
    if not gone and not come:
        return n
    at = _bisect(row, 0, n, leaving, False) if gone else n  # an invalid one: the first NaN
    if not come or (gone and entering >= leaving):  # the values after it move down
        to = _bisect(row, at + 1, n, entering, True) if come else n
        for k in range(at, to - 1):
            row[k] = row[k + 1]
        row[to - 1] = entering
        return n if come else n - 1
    to = _bisect(row, 0, at, entering, True)  # the values before it move up
    for k in range(at, to, -1):
        row[k] = row[k - 1]
    row[to] = entering
    return n if gone else n + 1


@compiled
def _bisect(row: Any, lo: int, hi: int, value: float, past_equal: bool) -> int:
    """Where `value` goes in the sorted row[lo:hi]: before its equals, or past them."""
    while lo < hi:
        mid = (lo + hi) // 2
        if row[mid] < value or (past_equal and row[mid] == value):
            lo = mid + 1
        else:
            hi = mid
    return lo
