"""Spectra sampled along track centrelines, and the per-AOI background model built from them.

Working in 1-D along each track (rather than on the 2-D image) makes "how many metres of track
are covered" a direct question, and makes the background model a small array per track that is
cheap to keep per AOI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.history import track_background
from railwatch.core.resolved import is_resolved, profile_step_m
from railwatch.core.sampling import erode, sample
from railwatch.core.types import (
    Alignment,
    BoolArray,
    DetectorParams,
    TrackLine,
    TrackProfile,
)

Floats = npt.NDArray[np.float64]


def sample_track(
    line: TrackLine, gsd_m: float, step_m: float
) -> tuple[Floats, Floats, float]:
    """(positions (S, 2) col/row, unit normals (S, 2), actual step in metres) along a line.

    The length is cut into S = round(length / step_m) equal pieces and the samples sit at their
    middles, (i + 0.5) * step from the first vertex, so each sample stands for exactly one step
    of track and S * step is the centreline's length. Parts are laid end to end.
    """
    pts_list, dirs_list, lens = [], [], []
    for part in line.parts:
        xy = np.asarray(part, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[0] < 2:
            continue
        seg = np.diff(xy, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        keep = seg_len > 0
        pts_list.append(xy[:-1][keep])
        dirs_list.append(seg[keep] / seg_len[keep, None])
        lens.append(seg_len[keep])
    if not lens:
        return np.zeros((0, 2)), np.zeros((0, 2)), step_m
    starts = np.concatenate(pts_list)
    dirs = np.concatenate(dirs_list)
    seg_len_m = np.concatenate(lens) * gsd_m
    total = float(seg_len_m.sum())
    n = max(round(total / step_m), 1)
    step = total / n
    s = (np.arange(n) + 0.5) * step
    edges = np.concatenate([[0.0], np.cumsum(seg_len_m)])
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(seg_len_m) - 1)
    pos = starts[idx] + dirs[idx] * ((s - edges[idx]) / gsd_m)[:, None]
    normals = np.column_stack([-dirs[idx, 1], dirs[idx, 0]])
    return pos, normals, step


def _corridor_offsets(params: DetectorParams, gsd_m: float) -> Floats:
    hw = params.corridor_half_width_m / gsd_m
    return np.array([-hw, 0.0, hw]) if hw > 0 else np.array([0.0])


@dataclass(frozen=True)
class TrackSamples:
    """Sample geometry of several tracks laid end to end: positions and normals (N, 2), and
    per track its id, actual step and slice into the arrays."""

    ids: tuple[str, ...]
    steps: tuple[float, ...]
    bounds: tuple[int, ...]  # track i owns rows bounds[i]:bounds[i + 1]
    positions: Floats
    normals: Floats


def track_samples(
    tracks: Sequence[TrackLine], gsd_m: float, step_m: float | None = None
) -> TrackSamples:
    """`sample_track` of every track, concatenated (computed once, sampled many times).
    `step_m` None: `profile_step_m` (1 m, about a pixel where cars are resolved)."""
    step_m = profile_step_m(gsd_m) if step_m is None else step_m
    pos_list, nrm_list, steps, bounds = [], [], [], [0]
    for line in tracks:
        pos, normals, step = sample_track(line, gsd_m, step_m)
        pos_list.append(pos)
        nrm_list.append(normals)
        steps.append(step)
        bounds.append(bounds[-1] + pos.shape[0])
    empty = [np.zeros((0, 2))]
    return TrackSamples(
        tuple(t.id for t in tracks), tuple(steps), tuple(bounds),
        np.concatenate(pos_list or empty), np.concatenate(nrm_list or empty),
    )


def extract_profiles(
    image: npt.NDArray[Any],
    valid: BoolArray,
    tracks: Sequence[TrackLine] | TrackSamples,
    gsd_m: float,
    step_m: float | None = None,
    params: DetectorParams | None = None,
    coverage: BoolArray | None = None,
    alignment: Alignment | None = None,
) -> dict[str, TrackProfile]:
    """Profiles of `image` (bands, H, W) along each track, keyed by track id, every `step_m`
    (None: `profile_step_m`).

    A sample is valid only if every pixel it touches is valid (after growing invalid areas by
    `params.mask_buffer_px`) and finite, so cloud edges never enter a profile. `coverage`
    (H, W), when given, tells the image footprint apart from clouds (False = no data at all);
    samples off the array are uncovered in any case. `alignment` (from `estimate_alignment`)
    profiles the image as if it had been put onto the reference first (align_to_reference):
    the samples are taken at the shifted positions and mapped by the gains and offsets.
    """
    p = params or DetectorParams()
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be (bands, H, W), got shape {image.shape}")
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != image.shape[1:]:
        raise ValueError(f"valid {valid.shape} does not match image {image.shape[1:]}")
    step = profile_step_m(gsd_m, p) if step_m is None else step_m
    geom = tracks if isinstance(tracks, TrackSamples) else track_samples(tracks, gsd_m, step)
    bands, h, w = image.shape
    grown = valid
    if p.mask_buffer_px > 0 and not valid.all():
        grown = erode(valid, p.mask_buffer_px)
    dx, dy = alignment.shift_px if alignment is not None else (0.0, 0.0)
    offsets = _corridor_offsets(p, gsd_m)
    # where cars are resolved, also the ground `side_strip_m` either side: one sampling pass
    strips = np.array([-1.0, 1.0]) * p.side_strip_m / gsd_m if is_resolved(gsd_m, p) else np.zeros(0)
    pos, n = geom.positions, geom.positions.shape[0]
    lines = np.concatenate([offsets, strips])
    pts = (pos[None] + geom.normals[None] * lines[:, None, None]).reshape(-1, 2)
    # (row, col) index space; the image is moved by (dx, dy) under the samples
    acc, ok_pts = sample(image, grown, pts[:, 1] - 0.5, pts[:, 0] - 0.5, (dx, dy))
    acc, ok_pts = acc.reshape(len(lines), n, bands), ok_pts.reshape(len(lines), n)
    corridor = len(offsets)
    values_all = _mapped(acc[:corridor].mean(axis=0), alignment)
    ok_all = np.asarray(ok_pts[:corridor].all(axis=0), dtype=bool)
    covered_all = (pos[:, 0] >= 0) & (pos[:, 0] <= w) & (pos[:, 1] >= 0) & (pos[:, 1] <= h)
    if coverage is not None:
        rows = np.clip((pos[:, 1] - dy).astype(int), 0, h - 1)
        cols = np.clip((pos[:, 0] - dx).astype(int), 0, w - 1)
        covered_all &= np.asarray(coverage, dtype=bool)[rows, cols]
    ok_all &= covered_all
    values_all[~ok_all] = np.nan
    sides = None
    if strips.size:  # (N, 2, bands), NaN where not valid
        sides = _mapped(acc[corridor:], alignment)
        sides[~ok_pts[corridor:]] = np.nan
        sides = np.ascontiguousarray(sides.transpose(1, 0, 2))
    out: dict[str, TrackProfile] = {}
    for i, track_id in enumerate(geom.ids):
        sl = slice(geom.bounds[i], geom.bounds[i + 1])
        out[track_id] = TrackProfile(
            track_id=track_id,
            step_m=geom.steps[i],
            values=values_all[sl],
            valid=ok_all[sl],
            positions=pos[sl],
            covered=covered_all[sl],
            **({} if sides is None else {"sides": sides[sl]}),
        )
    return out


def _mapped(values: npt.NDArray[Any], alignment: Alignment | None) -> npt.NDArray[np.float32]:
    """Sampled spectra as float32, mapped onto the reference by the alignment's gains and
    offsets (the last axis is the bands)."""
    if alignment is not None:
        values = values * np.asarray(alignment.gains) + np.asarray(alignment.offsets)
    return np.asarray(values, dtype=np.float32)


def background_from_history(
    history: Sequence[Mapping[str, TrackProfile]],
    min_scenes: int = 5,
    params: DetectorParams | None = None,
) -> dict[str, TrackProfile] | None:
    """Per-position median of earlier scenes' profiles: the AOI's empty-yard background.

    Cars move, so each stretch of track is empty in most scenes and the median is ballast. Scenes
    with no valid sample do not count towards `min_scenes`; positions with fewer than
    `params.history_min_valid` valid samples are invalid. None when there is too little history.
    """
    p = params or DetectorParams()
    useful = [h for h in history if any(prof.valid.any() for prof in h.values())]
    if len(useful) < min_scenes:
        return None
    ids: list[str] = []
    for h in useful:
        ids.extend(k for k in h if k not in ids)
    out: dict[str, TrackProfile] = {}
    for track_id in ids:
        profs = [h[track_id] for h in useful if track_id in h]
        # all profiles of a track come from the same grid; ignore any odd-length stragglers
        length = Counter(len(pr.valid) for pr in profs).most_common(1)[0][0]
        profs = [pr for pr in profs if len(pr.valid) == length]
        sides = None
        if all(pr.sides.shape[:2] == (length, 2) for pr in profs):  # the strips beside, alike
            sides = np.stack([pr.sides for pr in profs])
        out[track_id] = track_background(
            track_id, profs[0].step_m, profs[0].positions, np.stack([pr.values for pr in profs]),
            np.stack([pr.valid for pr in profs]), sides, p.history_min_valid)
    return out

