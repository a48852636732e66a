"""The neighbour model's costs, compiled (see neighbours.py for the model).

`explained_mask` asks, thousands of times a scene, what a sample's difference costs if that
sample is empty given who else is occupied, and under each hypothesis for one neighbour. As
numpy calls over a few samples at a time that was most of its time (≈ 70 small array
operations per question). Here the yard's tracks are laid end to end (global sample indices),
their links packed into flat arrays, and each question is a compiled loop over one sample's
links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.boxfit import explained_cost
from railwatch.core.jit import compiled
from railwatch.core.shadowgeom import CastLink
from railwatch.core.tracklinks import Link

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
NO_TRACK = -1


@dataclass(frozen=True)
class PackedLinks:
    """Links of every track, flat: track t's are first[t]:first[t + 1]; link l's per-sample
    arrays (over its owner's samples) start at start[l]; `j` is the global index on `other`.
    `sun`: the other track lies on the sun side (True when the side is not known); `low`,
    `high`, `lo`, `hi`: a cast link's coverage bounds (the lowest and the tallest car's shadow) and
    offsets (empty for plain links)."""

    first: Ints
    other: Ints
    start: Ints
    j: Ints
    near: npt.NDArray[np.bool_]
    sun: npt.NDArray[np.bool_]
    low: Floats
    high: Floats
    lo: Ints
    hi: Ints

    def arrays(self) -> tuple[Any, ...]:
        return (*self.lookup(), self.sun, self.low, self.high, self.lo, self.hi)

    def lookup(self) -> tuple[Any, ...]:
        """What finding a sample's partners needs: (first, other, start, j, near)."""
        return self.first, self.other, self.start, self.j, self.near


def pack_links(keys: Sequence[str], offsets: Ints,
               links: Mapping[str, Sequence[Link]] | Mapping[str, Sequence[CastLink]],
               side: Floats | None = None) -> PackedLinks:
    """The `links` of the tracks `keys`, laid end to end at `offsets`; cast links with their
    coverage bounds and offsets."""
    index = {k: t for t, k in enumerate(keys)}
    first, other, start = [0], [], []
    j: list[Ints] = []
    near: list[npt.NDArray[np.bool_]] = []
    sun: list[npt.NDArray[np.bool_]] = []
    low: list[Floats] = []
    high: list[Floats] = []
    lo: list[int] = []
    hi: list[int] = []
    size = 0
    for k in keys:
        for item in links.get(k, []):
            link = item.link if isinstance(item, CastLink) else item
            other.append(index[link.other])
            start.append(size)
            size += link.j.size
            j.append(link.j + offsets[index[link.other]])
            near.append(link.near)
            sun.append(np.ones(link.j.size, dtype=bool) if side is None
                       else np.asarray(link.unit @ side < -0.5, dtype=bool))
            if isinstance(item, CastLink):
                low.append(item.least)  # the least a car's shadow darkens there
                high.append(item.high)
                lo.append(int(item.offsets[0]))
                hi.append(int(item.offsets[-1]))
        first.append(len(other))

    def flat(parts: list[Any], dtype: Any) -> Any:
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

    return PackedLinks(np.asarray(first, dtype=np.intp), np.asarray(other, dtype=np.intp),
                       np.asarray(start, dtype=np.intp), flat(j, np.intp), flat(near, bool),
                       flat(sun, bool), flat(low, np.float64), flat(high, np.float64),
                       np.asarray(lo, dtype=np.intp), np.asarray(hi, dtype=np.intp))


@dataclass(frozen=True)
class CostModel:
    """What the cost of an empty sample needs, for the tracks laid end to end.

    `wdiff`, `norm2`, `wdark`: whitened differences, their norms, the whitened darkening
    column (global samples). `bleeding`: the (narrow) neighbour links a roof leaks across;
    `casts`: the links a shadow falls across, with geometric bounds (None: the adjacent
    sun-side neighbour casts within learnt bounds). Scalars: see `_cost_model` in neighbours.py."""

    offsets: Ints  # (T + 1,)
    wdiff: Floats
    norm2: Floats
    wdark: Floats
    bleeding: PackedLinks
    casts: PackedLinks | None
    has_shadow: bool
    side_known: bool
    least_leak: float  # lowest leak coefficient where a sun-side neighbour leaks (<= 0)
    max_bleed: float
    shadow_min_rel: float
    shadow_max_rel: float
    leak_dark: float
    ridge: float
    model_error: float

    def arrays(self) -> tuple[Any, ...]:
        casts = self.casts if self.casts is not None else self.bleeding
        return (self.offsets, self.wdiff, self.norm2, self.wdark, *self.bleeding.arrays(),
                *casts.arrays(), self.has_shadow, self.side_known, self.casts is not None,
                self.least_leak, self.max_bleed, self.shadow_min_rel, self.shadow_max_rel,
                self.leak_dark, self.ridge, self.model_error)


def choose(model: CostModel, partners: PackedLinks, track: int, rows: Ints,
           occupied: npt.NDArray[np.bool_], closed: npt.NDArray[np.bool_], lam: float,
           car_cost: Floats | None) -> npt.NDArray[np.bool_]:
    """Whether each of `rows` (local samples of `track`) is better a car than empty: its own
    cost, plus each empty partner sample's cost under either hypothesis (or, cheaper, as a
    car itself: `car_cost`, else λ)."""
    out = np.empty(rows.size, dtype=bool)
    _choose(track, rows, occupied, _prefix(closed), closed, lam,
            np.zeros(0) if car_cost is None else car_cost, car_cost is not None,
            *partners.lookup(), *model.arrays(), out)
    return out


def car_costs(model: CostModel, partners: PackedLinks, asked: npt.NDArray[np.bool_],
              occupied: npt.NDArray[np.bool_], closed: npt.NDArray[np.bool_], lam: float) -> Floats:
    """λ plus, per asked sample, how much more the empty samples it may shade would cost if a
    car stood there (a shadow it casts must show) than without it; λ elsewhere."""
    out = np.empty(asked.size)
    _car_costs(asked, occupied, _prefix(closed), closed, lam, *partners.lookup(),
               *model.arrays(), out)
    return out


def _prefix(closed: npt.NDArray[np.bool_]) -> Ints:
    return np.concatenate([[0], np.cumsum(closed, dtype=np.intp)])


@compiled
def _empty_cost(t: int, i: int, over_t: int, over_v: bool, bleed: Any, csum: Any, closed: Any,
                offsets: Any, wdiff: Any, norm2: Any, wdark: Any,
                b_first: Any, b_other: Any, b_start: Any, b_j: Any, b_near: Any, b_sun: Any,
                b_low: Any, b_high: Any, b_lo: Any, b_hi: Any,
                c_first: Any, c_other: Any, c_start: Any, c_j: Any, c_near: Any, c_sun: Any,
                c_low: Any, c_high: Any, c_lo: Any, c_hi: Any,
                has_shadow: bool, side_known: bool, has_cast: bool, least_leak: float,
                max_bleed: float, shadow_min_rel: float, shadow_max_rel: float, leak_dark: float,
                ridge: float, model_error: float) -> float:
    """Residual of sample i of track t if empty, given `closed` (each track's occupancy with
    coupler gaps closed; `csum` its prefix sums), track `over_t` seen as `over_v` instead.
    `bleed`: a (B,) buffer."""
    g = offsets[t] + i
    bands = wdiff.shape[1]
    bleed[:] = 0.0
    caster = shading_leak = False
    for link in range(b_first[t], b_first[t + 1]):
        s = b_start[link] + i
        if not b_near[s]:
            continue
        jg = b_j[s]
        if not (over_v if b_other[link] == over_t else closed[jg]):
            continue
        stronger = norm2[jg] > norm2[g]
        if stronger:
            for b in range(bands):
                bleed[b] += wdiff[jg, b]
        if stronger and b_sun[s]:
            shading_leak = True
        if has_shadow and b_sun[s]:
            caster = True
    if has_cast:
        lo_dark = hi_dark = 0.0
        for link in range(c_first[t], c_first[t + 1]):
            s = c_start[link] + i
            if not c_near[s]:
                continue
            o = c_other[link]
            if o == over_t:
                seen = over_v
            else:  # a car on the caster within the shadow's along-track offsets (`casting`)
                n = offsets[o + 1] - offsets[o]
                at = c_j[s] - offsets[o]
                lo = min(max(at - c_hi[link], 0), n - 1)
                hi = min(max(at - c_lo[link], 0), n - 1)
                seen = csum[offsets[o] + hi + 1] - csum[offsets[o] + lo] > 0
            if seen:
                lo_dark = max(lo_dark, c_low[s])
                hi_dark += c_high[s]
        lo_dark *= shadow_min_rel
        hi_dark = min(hi_dark * shadow_max_rel, 1.0)
    else:  # with a known side a car's shadow must be there; with an unknown side it may be
        lo_dark = (shadow_min_rel if side_known else 0.0) if caster else 0.0
        hi_dark = shadow_max_rel if caster else 0.0
    # a car's roof leaking in replaces the bright ballast between the tracks: it darkens a little
    leaks = False
    for b in range(bands):
        leaks = leaks or bleed[b] != 0.0
    if not has_shadow or not hi_dark > 0.0:
        hi_dark = leak_dark if leaks else 0.0
    cost: float = explained_cost(wdiff[g], bleed, wdark[g], least_leak if shading_leak else 0.0,
                                 max_bleed, lo_dark, hi_dark, ridge, model_error)
    return cost


@compiled
def _choose(t: int, rows: Any, occupied: Any, csum: Any, closed: Any, lam: float,
            car_cost: Any, use_car_cost: bool, p_first: Any, p_other: Any, p_start: Any,
            p_j: Any, p_near: Any, *model: Any) -> None:
    out = model[-1]
    args = model[:-1]
    offsets = args[0]
    bleed = np.empty(args[1].shape[1])
    for r in range(rows.size):
        i = rows[r]
        cost_empty = _empty_cost(t, i, NO_TRACK, False, bleed, csum, closed, *args)
        cost_car = lam
        for link in range(p_first[t], p_first[t + 1]):
            s = p_start[link] + i
            jg = p_j[s]
            if not p_near[s] or occupied[jg]:
                continue
            o = p_other[link]
            at = jg - offsets[o]
            own = car_cost[jg] if use_car_cost else lam
            cost_empty += min(_empty_cost(o, at, t, False, bleed, csum, closed, *args), own)
            cost_car += min(_empty_cost(o, at, t, True, bleed, csum, closed, *args), own)
        out[r] = cost_car < cost_empty


@compiled
def _car_costs(asked: Any, occupied: Any, csum: Any, closed: Any, lam: float, p_first: Any,
               p_other: Any, p_start: Any, p_j: Any, p_near: Any, *model: Any) -> None:
    out = model[-1]
    args = model[:-1]
    offsets = args[0]
    bleed = np.empty(args[1].shape[1])
    out[:] = 0.0
    for n in range(offsets.size - 1):
        for link in range(p_first[n], p_first[n + 1]):
            o = p_other[link]
            for i in range(offsets[n + 1] - offsets[n]):
                s = p_start[link] + i
                jg = p_j[s]
                if not asked[offsets[n] + i] or not p_near[s] or occupied[jg]:
                    continue
                at = jg - offsets[o]
                with_car = _empty_cost(o, at, n, True, bleed, csum, closed, *args)
                without = _empty_cost(o, at, n, False, bleed, csum, closed, *args)
                out[offsets[n] + i] += max(with_car - without, 0.0)
    for g in range(out.size):
        out[g] += lam
