"""Where the AOI's tracks really are in an image: its absolute misregistration.

A reference is as misregistered as any scene (PlanetScope: several metres, more than the 5.3 m
between sidings), so aligning an image to a reference is not enough: both must be put on the
track geometry, or every track is measured on its neighbour. The ballast bed is the one
feature the AOI file tells us the position of. The bed (a band of some half width either side
of every centreline) is rasterised as a template and matched against the image; its edges pin
the across-track position to a fraction of a pixel. Along the tracks the bed is
nearly featureless, so a weak prior keeps that component near zero unless the ends of the bed
say otherwise.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.signal import find_peaks

from railwatch.core.types import Alignment, BoolArray, DetectorParams, TrackLine

Floats = npt.NDArray[np.float64]

# ballast shoulder beyond the outermost centrelines: a plain bed (~2.9 m) up to a gravelled yard
BED_HALF_WIDTHS_M = (2.5, 3.0, 3.5, 4.5, 6.0, 8.0)
PRIOR_SIGMA_M = 8.0  # spread of geolocation errors (PlanetScope: ~10 m CE90)
RIVAL_PROMINENCE = 0.02  # a bump on the main peak's shoulder is not a second location
# the correlation of a bed seen clearly with its template (the simulator's clear, empty and
# low-contrast yards: 0.75-0.87; a dense yard's cars lower it to 0.33-0.6; featureless ground
# or noise: at most 0.3); weaker matches lower the confidence by (r / BED_MATCH_R)^2
BED_MATCH_R = 0.5


@dataclass(frozen=True)
class TrackLocation:
    """The image content is displaced by `shift_px` (dx, dy; +dy down) from the AOI geometry:
    a track drawn at (c, r) in the AOI file shows at (c + dx, r + dy) in the image.
    `confidence` 0..1: how much the best match stands out from the rest of the search area."""

    shift_px: tuple[float, float]
    confidence: float


def shift_tracks(tracks: Sequence[TrackLine], shift_px: tuple[float, float]) -> list[TrackLine]:
    """The centrelines moved by `shift_px` (dx, dy), e.g. to where an image shows them."""
    if shift_px == (0.0, 0.0):
        return list(tracks)
    offset = np.asarray(shift_px, dtype=np.float64)
    return [TrackLine(t.id, tuple(np.asarray(q, dtype=np.float64) + offset for q in t.parts))
            for t in tracks]


def _segment_distance(px: Floats, py: Floats, tracks: Sequence[TrackLine]) -> Floats:
    """Distance in pixels from each point to the nearest centreline segment."""
    best = np.full(px.shape, np.inf)
    for line in tracks:
        for part in line.parts:
            xy = np.asarray(part, dtype=np.float64)
            for (x0, y0), (x1, y1) in itertools.pairwise(xy):
                dx, dy = x1 - x0, y1 - y0
                length2 = dx * dx + dy * dy
                t = np.zeros(px.shape) if length2 == 0 else np.clip(
                    ((px - x0) * dx + (py - y0) * dy) / length2, 0.0, 1.0)
                np.minimum(best, np.hypot(px - x0 - t * dx, py - y0 - t * dy), out=best)
    return best


def _track_direction(tracks: Sequence[TrackLine]) -> Floats:
    """Length-weighted dominant direction of the centrelines (unit vector, sign-free)."""
    acc = np.zeros(2)
    for line in tracks:
        for part in line.parts:
            seg = np.diff(np.asarray(part, dtype=np.float64), axis=0)
            angle = np.arctan2(seg[:, 1], seg[:, 0])
            length = np.hypot(seg[:, 0], seg[:, 1])
            acc += [float((length * np.cos(2 * angle)).sum()), float((length * np.sin(2 * angle)).sum())]
    theta = 0.5 * np.arctan2(acc[1], acc[0])
    return np.array([np.cos(theta), np.sin(theta)])


def _parabolic(values: Floats) -> float:
    """Sub-sample offset of the peak of three values around a maximum (−0.5..0.5)."""
    a, b, c = values
    denom = a - 2 * b + c
    return 0.0 if denom >= 0 else float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))


def _rival(line: Floats, t: Floats, offset: float) -> float:
    """The best alternative to the peak at `offset`: the highest other local maximum a pixel
    and a half or more away (standing out by `RIVAL_PROMINENCE` of the peak), 0 if none.

    Not simply the best value that far away: the bed's correlation peak is as wide as the bed,
    so at a fine GSD (0.5 m: a 5 m bed is 10 px) a point 1.5 px out is still on the peak's own
    shoulder, and every location read as doubtful."""
    peaks, _ = find_peaks(line, prominence=RIVAL_PROMINENCE * float(line.max()))
    far = peaks[np.abs(t[peaks] - offset) > 1.5]
    return float(line[far].max()) if far.size else 0.0


def _window(shape: tuple[int, int], tracks: Sequence[TrackLine], reach: float
            ) -> tuple[slice, slice] | None:
    h, w = shape
    xy = np.vstack([np.asarray(p, dtype=np.float64) for t in tracks for p in t.parts])
    r0, r1 = max(int(xy[:, 1].min() - reach), 0), min(int(np.ceil(xy[:, 1].max() + reach)), h)
    c0, c1 = max(int(xy[:, 0].min() - reach), 0), min(int(np.ceil(xy[:, 0].max() + reach)), w)
    return None if r1 - r0 < 4 or c1 - c0 < 4 else (slice(r0, r1), slice(c0, c1))


def _binned(values: Floats, bins: npt.NDArray[np.intp], n: int) -> Floats:
    """Mean of `values` (..., P) per bin (P,) → (..., n); empty bins get the overall mean."""
    counts = np.bincount(bins, minlength=n).astype(np.float64)
    flat = values.reshape(-1, values.shape[-1])
    out = np.stack([np.bincount(bins, weights=v, minlength=n) for v in flat]).astype(np.float64)
    filled = counts > 0
    out[:, filled] /= counts[filled]
    out[:, ~filled] = out[:, filled].mean(axis=1, keepdims=True) if filled.any() else 0.0
    return out.reshape((*values.shape[:-1], n))


def _detrend(profile: Floats, size: int) -> Floats:
    """A 1-D profile minus its running mean (keeps edges a few bed widths across)."""
    out: Floats = profile - ndimage.uniform_filter1d(profile, size, axis=-1, mode="nearest")
    return out


FINE = 4  # bins per pixel across the tracks


@dataclass(frozen=True)
class _BedGeometry:
    """What locating needs from the track geometry alone (cached: the pipeline locates in the
    same AOI grid again and again)."""

    near: BoolArray  # window pixels that can matter at any offset
    across: Floats  # across-track coordinate of each window pixel, in bins
    normal: Floats  # (x, y) unit normal of the dominant track direction
    templates: Floats  # (widths, h, w) bed cover per candidate half width


TrackKey = tuple[tuple[str, tuple[bytes, ...]], ...]


def _track_key(tracks: Sequence[TrackLine]) -> TrackKey:
    """The centrelines as a hashable key (each part's float64 coordinates)."""
    return tuple((t.id, tuple(np.asarray(p, dtype=np.float64).tobytes() for p in t.parts))
                 for t in tracks)


@functools.lru_cache(maxsize=8)
def _bed_geometry(key: TrackKey, bounds: tuple[int, int, int, int],
                  gsd_m: float, max_px: int, half_widths_m: tuple[float, ...]) -> _BedGeometry:
    """`bounds`: the window's (row0, row1, col0, col1)."""
    tracks = [TrackLine(k, tuple(np.frombuffer(b).reshape(-1, 2) for b in parts))
              for k, parts in key]
    rows = np.arange(bounds[0], bounds[1], dtype=np.float64) + 0.5
    cols = np.arange(bounds[2], bounds[3], dtype=np.float64) + 0.5
    py, px = np.meshgrid(rows, cols, indexing="ij")
    dist = _segment_distance(px, py, tracks)
    u = _track_direction(tracks)
    normal = np.array([-u[1], u[0]])
    out = _BedGeometry(
        dist <= max(half_widths_m) / gsd_m + max_px + 2,
        (px * normal[0] + py * normal[1]) * FINE,
        normal,
        np.stack([np.clip(hw / gsd_m - dist + 0.5, 0.0, 1.0) for hw in half_widths_m]),
    )
    for array in (out.near, out.across, out.normal, out.templates):
        array.setflags(write=False)
    return out


def locate_tracks(
    images: Sequence[tuple[npt.NDArray[Any], BoolArray]],
    tracks: Sequence[TrackLine],
    gsd_m: float,
    max_shift_m: float = 15.0,
    half_widths_m: Sequence[float] = BED_HALF_WIDTHS_M,
    offsets_px: Sequence[tuple[float, float]] | None = None,
) -> TrackLocation:
    """The across-track displacement of the tracks in the frame of the first of `images`
    (image, valid). Further images add their evidence: `offsets_px[i]` is the shift that puts
    image i onto the first (`Alignment.shift_px`), e.g. a scene and its reference.

    The window around the tracks is collapsed along the dominant track direction into one
    across-track profile per band (bins of 1/4 pixel), and so is the ballast-bed template for
    each candidate bed width (yards differ: a single bed or a wide gravelled area). The best
    normalised correlation over widths and offsets wins. Along the tracks the bed says little
    and the AOI geometry is kept (0).
    """
    if not images or not tracks:
        return TrackLocation((0.0, 0.0), 0.0)
    shape2d = images[0][0].shape[1:]
    max_px = int(np.ceil(max_shift_m / gsd_m))
    widest = max(half_widths_m)
    window = _window(shape2d, tracks, widest / gsd_m + max_px + 4)
    if window is None:
        return TrackLocation((0.0, 0.0), 0.0)
    bounds = (window[0].start, window[0].stop, window[1].start, window[1].stop)
    geometry = _bed_geometry(_track_key(tracks), bounds, gsd_m, max_px, tuple(half_widths_m))
    near, across, normal, templates = (geometry.near, geometry.across, geometry.normal,
                                       geometry.templates)
    fine = FINE
    lo = float(across[near].min())
    n_bins = int(np.ceil(float(across[near].max()) - lo)) + 1
    size = round(4 * widest / gsd_m * fine) | 1
    reach = max_px * fine
    scores = np.zeros((len(half_widths_m), 2 * reach + 1))
    bands = 0  # bands (of every image used) whose evidence is summed in `scores`
    for i, (image, valid) in enumerate(images):
        sub = np.asarray(image[:, window[0], window[1]], dtype=np.float64)
        ok = near & np.asarray(valid, bool)[window] & np.isfinite(sub).all(axis=0)
        if ok.sum() < 0.1 * near.sum():
            continue
        dx, dy = offsets_px[i] if offsets_px is not None else (0.0, 0.0)
        moved = (dx * normal[0] + dy * normal[1]) * fine  # image i's pixels, in the first's frame
        bins = np.clip(np.floor(across[ok] + moved - lo), 0, n_bins - 1).astype(np.intp)
        feats = _detrend(_binned(sub[:, ok], bins, n_bins), size)
        feats /= np.maximum(np.sqrt((feats**2).sum(axis=1, keepdims=True)), 1e-12)
        temps = _detrend(_binned(templates[:, ok], bins, n_bins), size)
        temps /= np.maximum(np.sqrt((temps**2).sum(axis=1, keepdims=True)), 1e-12)
        for i, temp in enumerate(temps):
            for band in feats:
                # corr[k] = sum_j band[j + offset_k] * temp[j], offsets -reach..reach
                full = np.correlate(band, temp, mode="full")
                mid = n_bins - 1
                scores[i] += full[mid - reach : mid + reach + 1] ** 2
        bands += len(feats)
    if not bands or scores.max() <= 0:
        return TrackLocation((0.0, 0.0), 0.0)
    # geolocation errors are mostly small: a broad prior, and a peak at the edge of the search
    # range is no peak at all
    t = (np.arange(scores.shape[1]) - reach) / fine
    weighted = scores * np.exp(-0.5 * (t / (PRIOR_SIGMA_M / gsd_m)) ** 2)
    weighted[:, :2] = weighted[:, -2:] = 0.0
    best_i, peak_i = np.unravel_index(int(np.argmax(weighted)), scores.shape)
    best = int(best_i)
    lo_k, hi_k = max(int(peak_i) - 2, 1), min(int(peak_i) + 3, scores.shape[1] - 1)
    k = lo_k + int(np.argmax(scores[best, lo_k:hi_k]))  # the score's own local peak
    line = weighted[best]
    offset = float(k - reach)
    if 0 < k < len(line) - 1:  # sub-bin peak of the score itself (the prior would bias it)
        offset += _parabolic(scores[best, k - 1 : k + 2])
    offset /= fine
    # confidence: the peak stands out from any other location, and it is a bed's match at all
    distinct = float(np.clip(1.0 - _rival(line, t, offset) / float(line[k]), 0.0, 1.0))
    strength = min(1.0, float(scores[best, k]) / (bands * BED_MATCH_R**2))
    confidence = distinct * strength
    return TrackLocation((float(offset * normal[0]), float(offset * normal[1])), confidence)


def located_tracks(
    reference: tuple[npt.NDArray[Any], BoolArray],
    tracks: Sequence[TrackLine],
    gsd_m: float,
    params: DetectorParams,
    max_shift_m: float = 18.0,
    image: tuple[npt.NDArray[Any], BoolArray, Alignment] | None = None,
) -> tuple[list[TrackLine], TrackLocation]:
    """The tracks where `reference` (image, valid) shows them, and the location used.

    The reference alone first (an empty yard shows its bed best; cars only blur it); when that
    is not confident, `image` (image, valid, its alignment onto the reference) adds its
    evidence, if that makes a more confident location (a loaded yard's bed, seen in bands that
    hardly show it, only pulls a weak one off). A correction within the locator's own error is
    not made.
    """
    location = locate_tracks([reference], tracks, gsd_m, max_shift_m)
    if image is not None and location.confidence < params.min_registration_confidence:
        joint = locate_tracks([reference, image[:2]], tracks, gsd_m, max_shift_m,
                              offsets_px=[(0.0, 0.0), image[2].shift_px])
        location = joint if joint.confidence > location.confidence else location
    if float(np.hypot(*location.shift_px)) < params.min_location_shift_px:
        location = TrackLocation((0.0, 0.0), location.confidence)
    return shift_tracks(tracks, location.shift_px), location


def on_aoi(alignment: Alignment | None, location: TrackLocation, bands: int) -> Alignment:
    """The whole correction of an image: onto the reference (`alignment`), then the
    reference's own displacement from the AOI (`location`) undone. Confidence: the weaker."""
    applied = alignment.shift_px if alignment is not None else (0.0, 0.0)
    return Alignment(
        (applied[0] - location.shift_px[0], applied[1] - location.shift_px[1]),
        min(location.confidence, alignment.confidence) if alignment is not None
        else location.confidence,
        alignment.gains if alignment is not None else (1.0,) * bands,
        alignment.offsets if alignment is not None else (0.0,) * bands,
    )
