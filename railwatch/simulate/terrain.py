"""The ground around a yard: field parcels, forest, roads, buildings, the yard's apron.

All of it is fixed in world coordinates for an (AOI, seed), so it lines up from scene to scene
(phase correlation has real texture to lock onto) while crops ripen and fields get harvested
through the season, as they do in September–October.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import LineString, Polygon
from shapely.ops import unary_union
from shapely.prepared import prep

from railwatch.simulate.noise import fbm, hash01, lattice_field, stable_key
from railwatch.simulate.raster import F32, F64, line_bands, ramp
from railwatch.simulate.scene import Yard
from railwatch.simulate.season import is_main_line_id

# Surface reflectance of blue, green, red, nir.
CROP_GREEN = (0.035, 0.075, 0.045, 0.36)
CROP_DRY = (0.06, 0.085, 0.10, 0.27)
STUBBLE = (0.075, 0.09, 0.11, 0.23)
BARE = (0.08, 0.10, 0.13, 0.21)
GRASS = (0.045, 0.08, 0.065, 0.30)
FOREST = (0.025, 0.045, 0.03, 0.26)
APRON = (0.065, 0.08, 0.09, 0.17)
ASPHALT = (0.07, 0.075, 0.08, 0.095)
DIRT = (0.11, 0.13, 0.155, 0.20)
BALLAST = (0.118, 0.128, 0.14, 0.17)  # grey-brown crushed stone
SLEEPERS = (0.092, 0.1, 0.109, 0.133)  # ballast darkened by sleepers and rails
URBAN = (0.085, 0.095, 0.11, 0.19)  # packed earth, yards and kitchen gardens
VILLAGE_RADIUS_M = 320.0
ROOFS = (
    (0.20, 0.21, 0.22, 0.25),  # concrete
    (0.16, 0.15, 0.11, 0.14),  # blue metal
    (0.07, 0.07, 0.15, 0.20),  # red tiles
    (0.06, 0.065, 0.07, 0.09),  # dark tar
    (0.30, 0.31, 0.32, 0.34),  # white metal
)
SHADE = (0.42, 0.36, 0.32, 0.28)  # fraction left in shadow (diffuse skylight is blue)


@dataclass(frozen=True)
class Road:
    xy: F64  # (2, 2) end points in CRS metres
    half_width: float
    colour: tuple[float, float, float, float]


@dataclass(frozen=True)
class Building:
    cx: float
    cy: float
    half_len: float
    half_wid: float
    angle: float  # radians, of the long axis from east
    height: float
    colour: tuple[float, float, float, float]


@dataclass(frozen=True)
class World:
    """World-fixed layout of the landscape of one (AOI, seed)."""

    origin: tuple[float, float]  # subtracted before float32 maths
    key: int
    angle: float
    pitch_u: float
    pitch_v: float
    roads: tuple[Road, ...]
    buildings: tuple[Building, ...]
    villages: tuple[tuple[float, float], ...] = ()  # centres; houses spread ~110 m (1σ)


_WORLDS: dict[tuple[int, int], World] = {}


def world_of(yard: Yard, aoi_id: str, seed: int) -> World:
    """The landscape of an AOI (cached per process)."""
    cache_key = (stable_key(aoi_id, yard.polygon.wkb_hex), seed)
    if cache_key not in _WORLDS:
        _WORLDS[cache_key] = _make_world(yard, stable_key("world", aoi_id, seed))
    return _WORLDS[cache_key]


def _make_world(yard: Yard, key: int) -> World:
    rng = np.random.default_rng([key])
    centre = yard.polygon.centroid
    origin = (round(centre.x, -3), round(centre.y, -3))
    longest = max(yard.tracks, key=lambda t: t.length_m)
    p0, p1 = longest.xy[0], longest.xy[-1]
    u = (p1 - p0) / np.hypot(*(p1 - p0))
    n = np.array([-u[1], u[0]])
    offsets = [float(v) for t in yard.tracks for v in ((t.xy - p0) * n).sum(axis=1)]
    side = 1.0 if rng.random() < 0.5 else -1.0
    road_off = (max(offsets) + 28.0) if side > 0 else (min(offsets) - 28.0)
    ext = 250.0
    roads = [Road(np.array([p0 - u * ext + n * road_off, p1 + u * ext + n * road_off]), 3.0, DIRT)]
    # the line the yard sits on goes on beyond the AOI: ballast and sleepers to the scene edges
    for track in [t for t in yard.tracks if is_main_line_id(t.id)] or [longest]:
        for end, inward in ((track.xy[0], track.xy[1]), (track.xy[-1], track.xy[-2])):
            out = (end - inward) / np.hypot(*(end - inward))
            span = np.array([end - out * 3.0, end + out * 8000.0])
            roads += [Road(span, 2.9, BALLAST), Road(span, 1.3, SLEEPERS)]
    for _ in range(3):
        c = np.array([centre.x, centre.y]) + rng.uniform(-900, 900, 2)
        a = rng.uniform(0, math.pi)
        d = np.array([math.cos(a), math.sin(a)])
        roads.append(Road(np.array([c - d * 7000, c + d * 7000]), float(rng.uniform(3.0, 4.5)), ASPHALT))

    keep_out = prep(
        unary_union(
            [
                *(LineString(t.xy).buffer(14.0) for t in yard.tracks),
                *(LineString(r.xy).buffer(r.half_width + 3) for r in roads),
            ]
        )
    )
    buildings: list[Building] = []
    angle = math.atan2(u[1], u[0])

    def try_add(b: Building) -> None:
        radius = math.hypot(b.half_len, b.half_wid)
        for o in buildings:  # bounding circles plus 2 m: conservative and cheap
            if math.hypot(b.cx - o.cx, b.cy - o.cy) < radius + math.hypot(o.half_len, o.half_wid) + 2.0:
                return
        if not keep_out.intersects(_rect(b)):
            buildings.append(b)

    for _ in range(40):  # station sheds and warehouses along the service road
        along = float(rng.uniform(0.05, 0.95)) * float(np.hypot(*(p1 - p0)))
        off = road_off + side * float(rng.uniform(14.0, 90.0))
        c = p0 + u * along + n * off
        b = Building(
            float(c[0]),
            float(c[1]),
            float(rng.uniform(10, 35)),
            float(rng.uniform(6, 14)),
            angle,
            float(rng.uniform(4, 9)),
            ROOFS[int(rng.integers(len(ROOFS)))],
        )
        try_add(b)
        if len(buildings) >= 12:
            break
    villages = []
    for _ in range(3):
        r, t = float(rng.uniform(700, 1700)), float(rng.uniform(0, 2 * math.pi))
        vc = np.array([centre.x + r * math.cos(t), centre.y + r * math.sin(t)])
        villages.append((float(vc[0]), float(vc[1])))
        va = float(rng.uniform(0, math.pi))
        for _ in range(60):
            c = vc + rng.normal(0, 110, 2)
            b = Building(
                float(c[0]),
                float(c[1]),
                float(rng.uniform(4, 8)),
                float(rng.uniform(3, 5)),
                va + float(rng.normal(0, 0.08)),
                float(rng.uniform(3, 6)),
                ROOFS[int(rng.integers(len(ROOFS)))],
            )
            try_add(b)
    return World(
        origin,
        key,
        float(rng.uniform(0.1, 0.7)),
        float(rng.uniform(130, 220)),
        float(rng.uniform(60, 120)),
        tuple(roads),
        tuple(buildings),
        tuple(villages),
    )


def _rect(b: Building) -> Polygon:
    ca, sa = math.cos(b.angle), math.sin(b.angle)
    pts = [
        (-b.half_len, -b.half_wid),
        (b.half_len, -b.half_wid),
        (b.half_len, b.half_wid),
        (-b.half_len, b.half_wid),
    ]
    return Polygon([(b.cx + x * ca - y * sa, b.cy + x * sa + y * ca) for x, y in pts])


def _bounds_table(k0: int, k1: int, pitch: float, key: int, extra: NDArray[np.int64] | None = None) -> F64:
    """Jittered parcel boundaries k·pitch ± 0.3·pitch for k in [k0, k1] (per row of `extra`)."""
    ks = np.arange(k0, k1 + 1, dtype=np.int64)
    if extra is None:
        return (ks + 0.6 * (hash01(ks, ks * 0 + 17, key) - 0.5)) * pitch
    jitter = hash01(ks[None, :], extra[:, None], key)
    return (ks[None, :] + 0.6 * (jitter - 0.5)) * pitch


def ground(world: World, xs: F64, ys: F64, day: dt.date) -> F32:
    """Reflectance (4, H, W) of fields, forest and field margins at world points (ys × xs)."""
    ox, oy = world.origin
    x = (xs - ox).astype(np.float32)[None, :]
    y = (ys - oy).astype(np.float32)[:, None]
    ca, sa = np.float32(math.cos(world.angle)), np.float32(math.sin(world.angle))
    u = x * ca + y * sa
    v = y * ca - x * sa
    # parcel index along u, then along v with boundaries that differ from strip to strip
    ku = np.floor(u * np.float32(1.0 / world.pitch_u)).astype(np.int32)
    k0, k1 = int(ku.min()) - 1, int(ku.max()) + 2
    bu = _bounds_table(k0, k1, world.pitch_u, world.key + 1).astype(np.float32)
    ku -= k0
    iu = ku + (u >= bu.take(ku + 1)) - (u < bu.take(ku))
    edge = np.minimum(u - bu.take(iu), bu.take(iu + 1) - u)
    del ku, u
    kv = np.floor(v * np.float32(1.0 / world.pitch_v)).astype(np.int32)
    j0, j1 = int(kv.min()) - 1, int(kv.max()) + 2
    strips = np.arange(k0 + int(iu.min()), k0 + int(iu.max()) + 1, dtype=np.int64)
    bv = _bounds_table(j0, j1, world.pitch_v, world.key + 2, strips).astype(np.float32).ravel()
    kv += (iu - (int(strips[0]) - k0)) * np.int32(j1 - j0 + 1) - j0  # flat index into bv
    iv = kv + (v >= bv.take(kv + 1)) - (v < bv.take(kv))
    np.minimum(edge, np.minimum(v - bv.take(iv), bv.take(iv + 1) - v), out=edge)
    del kv, v
    # iv is now a unique flat (strip, v-parcel) index: use it as the parcel id
    iu = (iv // np.int32(j1 - j0 + 1)).astype(np.int32)
    iv = iv - iu * np.int32(j1 - j0 + 1) + j0
    iu += int(strips[0])
    # per-parcel state: class, brightness, harvest date
    pu = np.arange(int(iu.min()), int(iu.max()) + 1, dtype=np.int64)
    pv = np.arange(int(iv.min()), int(iv.max()) + 1, dtype=np.int64)
    kind = hash01(pu[:, None], pv[None, :], world.key + 3)
    bright = 0.88 + 0.24 * hash01(pu[:, None], pv[None, :], world.key + 4)
    harvest = 250 + 45 * hash01(pu[:, None], pv[None, :], world.key + 5)
    doy = day.timetuple().tm_yday
    green = np.clip((harvest - doy) / 30.0, 0.0, 1.0)
    table = np.empty((4, *kind.shape), dtype=np.float32)
    for b in range(4):
        crop = green * CROP_GREEN[b] + (1 - green) * CROP_DRY[b]
        crop = np.where(doy >= harvest, STUBBLE[b], crop)
        val = np.select([kind < 0.55, kind < 0.7, kind < 0.85], [crop, BARE[b], GRASS[b]], STUBBLE[b])
        table[b] = (val * bright).astype(np.float32)
    pid = (iu - int(pu[0])) * np.int32(pv.size) + (iv - int(pv[0]))
    del iu, iv
    texture = 1.0 + fbm(xs, ys, ((9.0, 0.07), (33.0, 0.05)), world.key + 6)
    zone = fbm(xs, ys, ((1100.0, 1.0), (350.0, 0.45)), world.key + 8)
    forest = np.clip((zone - 1.05) / 0.35, 0.0, 1.0)
    crowns = 1.0 + 2.5 * (texture - 1.0)  # tree crowns: rougher than fields
    margin = np.float32(0.55) * ramp(
        (np.float32(2.0) - edge) / np.float32(xs[1] - xs[0] if xs.size > 1 else 1.0)
    )
    out = np.empty((4, ys.size, xs.size), dtype=np.float32)
    for b in range(4):
        val = table[b].ravel().take(pid)
        val = val + margin * (np.float32(GRASS[b]) - val)
        val = val * texture
        out[b] = val + forest * (np.float32(FOREST[b]) * crowns - val)
    _village_ground(out, world, xs, ys, texture)
    return out


def _village_ground(refl: F32, world: World, xs: F64, ys: F64, texture: F32) -> None:
    """Packed earth, yards and gardens between the houses of each village, in place."""
    for vx, vy in world.villages:
        c0, c1 = np.searchsorted(xs, [vx - VILLAGE_RADIUS_M, vx + VILLAGE_RADIUS_M])
        r0, r1 = np.searchsorted(-ys, [-(vy + VILLAGE_RADIUS_M), -(vy - VILLAGE_RADIUS_M)])
        if c0 >= c1 or r0 >= r1:
            continue
        dx = (xs[c0:c1] - vx).astype(np.float32)[None, :]
        dy = (ys[r0:r1] - vy).astype(np.float32)[:, None]
        ragged = np.sqrt(dx * dx + dy * dy) - 90.0 * lattice_field(xs[c0:c1], ys[r0:r1], 70.0, world.key + 13)
        alpha = 0.85 * np.clip((np.float32(VILLAGE_RADIUS_M - 60.0) - ragged) / np.float32(120.0), 0.0, 1.0)
        tex = texture[r0:r1, c0:c1]
        win = refl[:, r0:r1, c0:c1]
        for b in range(4):
            win[b] += alpha * (np.float32(URBAN[b]) * tex - win[b])


def draw_roads(refl: F32, world: World, xs: F64, ys: F64) -> None:
    """Anti-aliased roads, in place."""
    step = float(xs[1] - xs[0])
    for road in world.roads:
        for band in line_bands(
            road.xy, np.array([0.0, 1.0]), (), xs, ys, road.half_width + step, chunk=150.0
        ):
            cov = ramp((np.float32(road.half_width) - np.abs(band.d)) / np.float32(step))
            if not cov.any():
                continue
            win = refl[:, band.rows, band.cols]
            for b in range(4):
                win[b] += cov * (np.float32(road.colour[b]) - win[b])


def draw_buildings(refl: F32, world: World, xs: F64, ys: F64, shadow: tuple[float, float]) -> None:
    """Roofs and their shadows (cast along `shadow`, metres per metre of height), in place."""
    step = float(xs[1] - xs[0])
    for pass_shadow in (True, False):
        for b in world.buildings:
            reach = b.half_len + b.height * float(np.hypot(*shadow)) + 2 * step
            c0, c1 = np.searchsorted(xs, [b.cx - reach, b.cx + reach])
            r0, r1 = np.searchsorted(-ys, [-(b.cy + reach), -(b.cy - reach)])
            if c0 >= c1 or r0 >= r1:
                continue
            dx = (xs[c0:c1] - b.cx).astype(np.float32)[None, :]
            dy = (ys[r0:r1] - b.cy).astype(np.float32)[:, None]
            win = refl[:, r0:r1, c0:c1]
            if pass_shadow:
                cov = np.zeros((r1 - r0, c1 - c0), dtype=np.float32)
                for f in (0.5, 1.0):
                    cov = np.maximum(
                        cov, _box(dx - shadow[0] * b.height * f, dy - shadow[1] * b.height * f, b, step)
                    )
                for k in range(4):
                    win[k] *= 1 - cov * np.float32(1 - SHADE[k])
            else:
                cov = _box(dx, dy, b, step)
                for k in range(4):
                    win[k] += cov * (np.float32(b.colour[k]) - win[k])


def _box(dx: F32, dy: F32, b: Building, step: float) -> F32:
    ca, sa = np.float32(math.cos(b.angle)), np.float32(math.sin(b.angle))
    along = dx * ca + dy * sa
    across = dy * ca - dx * sa
    s = np.float32(step)
    return ramp((np.float32(b.half_len) - np.abs(along)) / s) * ramp(
        (np.float32(b.half_wid) - np.abs(across)) / s
    )


def draw_apron(refl: F32, yard: Yard, xs: F64, ys: F64, world: World, reach: float = 40.0) -> None:
    """Compacted soil and weeds within ~30 m of the tracks (a yard is not a field), in place."""
    pts = np.vstack([t.xy for t in yard.tracks])
    c0, c1 = np.searchsorted(xs, [pts[:, 0].min() - reach, pts[:, 0].max() + reach])
    r0, r1 = np.searchsorted(-ys, [-(pts[:, 1].max() + reach), -(pts[:, 1].min() - reach)])
    if c0 >= c1 or r0 >= r1:
        return
    sx, sy = xs[c0:c1], ys[r0:r1]
    near = np.full((sy.size, sx.size), np.inf, dtype=np.float32)
    for track in yard.tracks:
        for band in line_bands(track.xy, track.along, track.breaks, sx, sy, reach, chunk=120.0):
            win = near[band.rows, band.cols]
            np.minimum(win, np.abs(band.d), out=win)
    alpha = np.clip((np.float32(reach - 2.0) - near) / np.float32(14.0), 0.0, 1.0)
    weeds = np.clip(0.5 + 0.5 * lattice_field(sx, sy, 15.0, world.key + 11), 0.0, 1.0)
    win = refl[:, r0:r1, c0:c1]
    for b in range(4):
        target = np.float32(APRON[b]) + weeds * np.float32(0.35 * (GRASS[b] - APRON[b]))
        win[b] += alpha * (target - win[b])
