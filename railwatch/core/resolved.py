"""Cars counted one by one where the imagery resolves them (SkySat-like, ≤ 1 m GSD).

At 3 m a train is a smooth stretch and cars follow from its length over the AOI's pitch. At
0.5 m the 1 m coupler gaps are two pixels wide and a train is a periodic pattern of roofs and
gaps: profiles are taken every pixel, the gaps are bridged before occupancy is scored (they
would read as empty track and inflate the noise), and each occupied segment is counted from
its gaps and from the period of its along-track pattern (`count_segment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from railwatch.core.occupancy import runs
from railwatch.core.robust import median
from railwatch.core.types import BoolArray, DetectorParams, TrackProfile

Floats = npt.NDArray[np.float64]


def is_resolved(gsd_m: float, params: DetectorParams) -> bool:
    """Whether cars are resolved at this GSD (coupler gaps a pixel or more wide)."""
    return gsd_m <= params.resolved_gsd_m


def profile_step_m(gsd_m: float, params: DetectorParams | None = None) -> float:
    """Profile step: 1 m where cars blur into trains, about a pixel where gaps are visible
    (a 1 m step would alias 1 m gaps away)."""
    p = params or DetectorParams()
    if not is_resolved(gsd_m, p):
        return 1.0
    return max(p.resolved_min_step_m, p.resolved_step_px * gsd_m)


def running_nanmedian(values: Floats, valid: BoolArray, width: int) -> Floats:
    """Per-column running median over `width` samples (odd), of valid samples only; rows
    with no valid sample in reach keep their value."""
    if width <= 1 or values.shape[0] == 0:
        return values
    half = width // 2
    v = np.where(valid[:, None], values, np.nan)
    padded = np.pad(v, ((half, half), (0, 0)), constant_values=np.nan)
    windows = sliding_window_view(padded, width, axis=0)  # (S, B, width)
    have = valid.copy()
    have[:] = np.isfinite(windows).any(axis=2).all(axis=1)
    out = values.copy()
    with np.errstate(all="ignore"):
        out[have] = np.nanmedian(windows[have], axis=2)
    return out


def bridge_gaps(
    profiles: Mapping[str, TrackProfile], params: DetectorParams
) -> dict[str, TrackProfile]:
    """Profiles with coupler gaps (and other features shorter than half of
    `resolved_fill_m`) bridged by a running median: occupancy is about trains."""
    out: dict[str, TrackProfile] = {}
    for k, prof in profiles.items():
        width = max(round(params.resolved_fill_m / prof.step_m), 1) | 1
        values = running_nanmedian(prof.values.astype(np.float64), prof.valid, width)
        values[~prof.valid] = np.nan
        out[k] = replace(prof, values=values.astype(np.float32))
    return out


@dataclass(frozen=True)
class SegmentCount:
    """Cars in one occupied segment: best count and its plausible range."""

    cars: int
    low: int
    high: int


def gap_signal(
    raw: Mapping[str, TrackProfile], bridged: Mapping[str, TrackProfile], params: DetectorParams
) -> dict[str, Floats]:
    """Per track, how far each sample departs from its bridged surroundings, in robust noise
    units pooled over the yard: coupler gaps (ballast or shadow between two roofs) peak."""
    res = {k: np.where(raw[k].valid[:, None], raw[k].values - bridged[k].values, 0.0)
           for k in raw if k in bridged}
    usable = [r[raw[k].valid] for k, r in res.items() if raw[k].valid.any()]
    if not usable:
        return {k: np.zeros(len(p.valid)) for k, p in raw.items()}
    pooled = np.concatenate(usable).astype(np.float64)
    level = median(np.abs(np.concatenate([raw[k].values[raw[k].valid] for k in res])), axis=0)
    mad = 1.4826 * median(np.abs(pooled - median(pooled, axis=0)), axis=0)
    scale = np.maximum(mad, params.noise_floor_rel * np.maximum(level, 1e-12))
    out = {k: np.sqrt(np.mean((r / scale) ** 2, axis=1)) for k, r in res.items()}
    for k, p in raw.items():
        out.setdefault(k, np.zeros(len(p.valid)))
    return out


def _peaks(g: Floats, threshold: float) -> npt.NDArray[np.intp]:
    """Local maxima of g at or above `threshold`, strongest first."""
    if g.size < 3:
        return np.zeros(0, dtype=np.intp)
    inner = (g[1:-1] >= g[:-2]) & (g[1:-1] > g[2:]) & (g[1:-1] >= threshold)
    idx = np.flatnonzero(inner) + 1
    return idx[np.argsort(-g[idx], kind="stable")]


def pick_gaps(g: Floats, lo: int, hi: int, spacing: float, threshold: float) -> list[int]:
    """Coupler gaps strictly inside samples [lo, hi): the strongest peaks, no two (nor a gap
    and an end) closer than `spacing` samples (roof patterns, tank ends, flat-car decks)."""
    chosen: list[int] = []
    for i in _peaks(g[lo:hi], threshold) + lo:
        if min(i - lo, hi - i) < spacing:
            continue
        if all(abs(i - c) >= spacing for c in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def _car_span(pitch: float, params: DetectorParams) -> tuple[float, float]:
    """The shortest and longest a car may be (samples): `resolved_min_car_fraction` to
    `resolved_max_car_fraction` pitches."""
    return params.resolved_min_car_fraction * pitch, params.resolved_max_car_fraction * pitch


def _one_car(spacings: npt.NDArray[np.integer[Any]], pitch: float, params: DetectorParams
             ) -> npt.NDArray[np.integer[Any]]:
    """The spacings (samples) that can span one car (`_car_span`)."""
    shortest, longest = _car_span(pitch, params)
    return spacings[(spacings >= shortest) & (spacings <= longest)]


def _period(g: Floats, gaps: list[int], lo: int, hi: int, pitch: float, params: DetectorParams
            ) -> float:
    """The along-track period (samples) of the cars in [lo, hi): from the spacings of gaps
    one car apart, else the autocorrelation peak, else pitch. A car is `resolved_min_car_fraction`
    to `resolved_max_car_fraction` pitches long (the AOI's pitch is its typical car): a roof's
    own pattern (hopper bays, containers on a flat car) peaks at shorter spacings and must not
    set the period."""
    shortest, longest = _car_span(pitch, params)
    one_car = _one_car(np.diff(gaps), pitch, params)
    if one_car.size >= 2:
        return float(median(one_car))
    x = g[lo:hi] - np.mean(g[lo:hi]) if hi > lo else np.zeros(0)
    first, last = int(np.ceil(shortest)), int(np.floor(longest))
    if x.size < 2 * last or not np.any(x):
        return pitch
    ac = np.array([np.dot(x[:-lag], x[lag:]) / (x.size - lag) for lag in range(first, last + 1)])
    best = int(np.argmax(ac))
    return float(first + best) if ac[best] > 0.2 * float(np.dot(x, x)) / x.size else pitch


def count_segment(
    g: Floats, lo: int, hi: int, step_m: float, car_pitch_m: float, params: DetectorParams
) -> SegmentCount:
    """Cars on samples [lo, hi) of one occupied segment, from its coupler gaps: each stretch
    between gaps (or the ends) holds round(length / period) cars, at least one. The range
    spans that, gaps + 1 and (length + gap) / period: narrow when gaps and period agree."""
    pitch = car_pitch_m / step_m
    gaps = pick_gaps(g, lo, hi, params.resolved_min_car_fraction * pitch, params.resolved_gap_z)
    period = _period(g, gaps, lo, hi, pitch, params)
    gap = params.coupler_gap_m / step_m
    bounds = [lo - gap / 2, *gaps, hi + gap / 2]
    by_gaps = sum(max(1, round(float(b - a) / period)) for a, b in pairwise(bounds))
    by_length = max(1, round((hi - lo + gap) / period))
    counts = (by_gaps, by_length, len(gaps) + 1)
    return SegmentCount(by_gaps, min(counts), max(counts))


def count_track(
    g: Floats, segs: list[tuple[float, float]], step_m: float, car_pitch_m: float,
    params: DetectorParams,
) -> SegmentCount:
    """`count_segment` over a track's occupied (start_m, end_m) segments, summed."""
    total = SegmentCount(0, 0, 0)
    for s, e in segs:
        lo, hi = max(round(s / step_m), 0), min(round(e / step_m), g.size)
        c = count_segment(g, lo, max(hi, lo + 1), step_m, car_pitch_m, params)
        total = SegmentCount(total.cars + c.cars, total.low + c.low, total.high + c.high)
    return total


def gap_trains(
    g: Floats, usable: BoolArray, step_m: float, car_pitch_m: float, params: DetectorParams,
    z: Floats | None = None, seen: BoolArray | None = None, explained: BoolArray | None = None,
) -> list[tuple[float, float]]:
    """(start_m, end_m) of trains told by their coupler gaps alone: at least
    `resolved_chain_gaps` gaps one car apart in a row. Roofs that match the ballast (grey
    gondolas in haze) leave the spectra flat, but not the gaps between them.

    A chain's end gap may be the train's own end, which peaks like a gap: with the occupancy
    score `z`, half a car is added beyond it only where the spectra do not tell a car inside
    from ballast outside (`seen`: the samples the score could judge, clear of clouds).

    `explained`: samples whose change the neighbours explain (a shadow shows its caster's
    couplers). Such gaps carry a chain across but neither start nor end one, and at least
    `resolved_chain_own_gaps` of a chain's gaps are its own: a grey train whose roofs stand out
    here and there, where a neighbour's shadow could also fall, stays one train (0.5 m bench,
    dense 2 -> 3/10, cars MAE 5.3 -> 4.3; nothing else moved).

    Two visible trains less than a car apart are two: a chain does not run across unchanged
    ballast (`_ballast_between`) between clearly visible cars (0.5 m bench with the sun: dense
    4 -> 5/10; two trains 10 m apart read as one with 2 cars too many)."""
    pitch = car_pitch_m / step_m
    seen = usable if seen is None else seen

    def ends_train(at: int, outward: float, inner_z: float) -> bool:
        return _train_end(z, seen, at, outward, params, inner_z)

    found = _usable_gaps(g, usable, pitch, params.resolved_gap_z, params)
    own = np.ones(g.size, dtype=bool) if explained is None else ~explained
    chains: list[list[int]] = []
    visible = params.resolved_visible_z
    for i in found:
        last = chains[-1][-1] if chains else None
        # gaps are at least a car apart (pick_gaps); farther than two is not one train
        if last is not None and i - last <= 2.4 * pitch and not (
            # "one gap missed" between two clearly visible trains' ends is the ballast between
            # them (a grey train's roofs may stand out a little here and there)
            i - last > 1.5 * pitch and (
                (ends_train(last, pitch, visible) and ends_train(i, -pitch, visible))
                or _ballast_between(z, seen, last, i, params, step_m, pitch))
        ):
            chains[-1].append(i)
        else:
            chains.append([i])
    chains = _bridged(chains, g, usable & own, pitch, params)
    out = []
    # faint chains where the spectra did not change and no strong chain runs: a train's own
    # strong gaps end it, and faint peaks past its end are the ballast's noise
    strong = [(c[0], c[-1]) for c in chains if len(c) >= params.resolved_chain_gaps]
    faint = [c for c in faint_chains(g, usable & own, pitch, params)
             if (z is None or float(np.median(z[c[0]: c[-1] + 1])) < params.low_z)
             and not any(c[0] <= b and a <= c[-1] for a, b in strong)]
    for chain in chains + faint:
        mine = [j for j, i in enumerate(chain) if own[i]]
        if len(mine) < params.resolved_chain_own_gaps or (
                not mine or mine[-1] - mine[0] + 1 < params.resolved_chain_gaps):
            continue
        chain = chain[mine[0]: mine[-1] + 1]
        one_car = _one_car(np.diff(chain), pitch, params)
        period = float(median(one_car)) if one_car.size else pitch
        # a car beyond each end gap, unless the gap is where a visible train meets ballast
        first, last = chain[0], chain[-1]
        lo = first if ends_train(first, -period, params.high_z) else max(first - period / 2, 0.0)
        hi = last if ends_train(last, period, params.high_z) else min(last + period / 2, g.size)
        out.append((lo * step_m, hi * step_m))
    return out


def _bridged(chains: list[list[int]], g: Floats, usable: BoolArray, pitch: float,
             params: DetectorParams) -> list[list[int]]:
    """`chains` with two in a row joined where faint gaps (`resolved_faint_gap_z`) fill the
    stretch between them, more than two cars long, a car apart: every step within
    `resolved_faint_spacing_tolerance` of the chains' own spacing. Grey cars in a train whose
    other couplers stand out: 0.5 m low contrast #1, two pairs of strong gaps four cars apart
    and three faint ones between read as two cuts of 3 and 5 cars for one of 10 (with a
    reference 8 -> 9/10). A train's end beside unchanged ballast has no such row of peaks."""
    if len(chains) < 2:
        return chains
    faint = _usable_gaps(g, usable, pitch, params.resolved_faint_gap_z, params)
    out = [chains[0]]
    for chain in chains[1:]:
        a, b = out[-1][-1], chain[0]
        spacings = np.concatenate([np.diff(out[-1]), np.diff(chain)]).astype(np.float64)
        period = float(median(spacings)) if spacings.size else pitch
        between = [i for i in faint if a < i < b]
        steps = np.diff([a, *between, b])
        if b - a > 2.4 * pitch and between and bool(np.all(
                np.abs(steps - period) <= params.resolved_faint_spacing_tolerance * period)):
            out[-1] = out[-1] + between + chain
        else:
            out.append(chain)
    return out


def _usable_gaps(g: Floats, usable: BoolArray, pitch: float, threshold: float,
                 params: DetectorParams) -> list[int]:
    """Gaps of the whole track at `threshold` (`pick_gaps`), on usable samples only."""
    return [i for i in pick_gaps(g, 0, g.size, params.resolved_min_car_fraction * pitch, threshold)
            if usable[i]]


def faint_chains(g: Floats, usable: BoolArray, pitch: float, params: DetectorParams
                 ) -> list[list[int]]:
    """Runs of at least `resolved_faint_chain_gaps` faint gaps (`resolved_faint_gap_z`) in a
    row, evenly spaced a car apart: one faint peak may be a roof's seam, a row of them at one
    period is a grey train's couplers (plain ballast has no peaks at all). 0.5 m bench with a
    reference: dense 3 -> 4/10 (with the sun) and 1 -> 2/10 (without), cars MAE 4.3 -> 3.9:
    four grey gondolas at the head of a train, their gaps at 2.9-4.0, were not seen."""
    if params.resolved_faint_chain_gaps <= 0:
        return []
    found = _usable_gaps(g, usable, pitch, params.resolved_faint_gap_z, params)
    shortest, longest = _car_span(pitch, params)
    out: list[list[int]] = []
    run: list[int] = []
    for i in found:
        spacing = i - run[-1] if run else 0
        car_apart = shortest <= spacing <= longest
        first = run[1] - run[0] if len(run) > 1 else spacing
        if car_apart and abs(spacing - first) <= params.resolved_faint_spacing_tolerance * first:
            run.append(i)
            continue
        if len(run) >= params.resolved_faint_chain_gaps:
            out.append(run)
        # a gap a car after the last at another spacing may start the next run with it
        run = [run[-1], i] if car_apart else [i]
    if len(run) >= params.resolved_faint_chain_gaps:
        out.append(run)
    return out


def _ballast_between(z: Floats | None, seen: BoolArray, a: int, b: int, params: DetectorParams,
                     step_m: float, pitch: float) -> bool:
    """Whether samples (a, b) between two gaps hold a stretch of seen, unchanged ballast at
    least `resolved_split_m` long with clearly visible cars (`resolved_visible_z`) on both
    sides (after b: within a car): the end of one visible train and the head of the next, less
    than a car apart (a missed coupler gap is a metre, not metres of no change)."""
    if z is None or b - a < 3:
        return False
    quiet = seen[a + 1: b] & (z[a + 1: b] < params.low_z)
    least = max(round(params.resolved_split_m / step_m), 1)
    visible = params.resolved_visible_z
    return any(hi - lo >= least and np.max(z[a + 1: a + 1 + lo], initial=0.0) >= visible
               and np.max(z[a + 1 + hi: b + round(pitch)], initial=0.0) >= visible
               for lo, hi in runs(quiet))


def _train_end(z: Floats | None, seen: BoolArray, at: int, outward: float,
               params: DetectorParams, inner_z: float) -> bool:
    """Whether the gap at sample `at` ends a train: the car on the inner side (`outward`
    samples) stands out by `inner_z` and the half car beyond it, all seen, stays below `low_z`.
    Half a car is what a chain's end would add; a whole car's stretch reached into the next
    train where two stand less than a car apart and took its first car for one more (0.5 m
    bench, cloudy #8: 11 m between two trains, 4 cars read for 3)."""
    if z is None:
        return False
    reach = max(int(abs(outward)), 1)
    beyond = max(int(abs(outward) / 2), 1)
    inner = slice(max(at - reach, 0), at) if outward > 0 else slice(at + 1, at + 1 + reach)
    outer = slice(at + 1, at + 1 + beyond) if outward > 0 else slice(max(at - beyond, 0), at)
    if z[inner].size == 0 or z[outer].size == 0 or not np.all(seen[outer]):
        return False
    return float(np.median(z[inner])) >= inner_z and float(np.median(z[outer])) < params.low_z


def union(a: list[tuple[float, float]], b: list[tuple[float, float]], close_m: float
          ) -> list[tuple[float, float]]:
    """Segments of both lists, merged where they overlap or lie within `close_m`."""
    merged: list[tuple[float, float]] = []
    for s, e in sorted(a + b):
        if merged and s - merged[-1][1] <= close_m:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def minus(segments: list[tuple[float, float]], cut: list[tuple[float, float]], min_m: float
          ) -> list[tuple[float, float]]:
    """`segments` without the stretches of `cut`, the pieces shorter than `min_m` dropped."""
    out = []
    for s, e in segments:
        pieces = [(s, e)]
        for a, b in cut:
            pieces = [q for ps, pe in pieces for q in ((ps, min(pe, a)), (max(ps, b), pe))]
        out += [(ps, pe) for ps, pe in pieces if pe - ps >= min_m]
    return out
