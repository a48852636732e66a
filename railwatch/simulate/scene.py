"""Per-acquisition parameters: footprint, grid, time, sun, misregistration, atmosphere.

Everything here is drawn from a generator keyed by (seed, AOI, date), so a scene is the same
whichever date range it was published in. Geometry is in the scene's UTM CRS, in metres.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from railwatch.aoi import AOI, DEFAULT_GSD_M
from railwatch.errors import InvalidInput
from railwatch.grid import project, utm_crs_for
from railwatch.simulate.noise import stable_key
from railwatch.simulate.season import DayPlan

GRID_BUFFER_M = 60.0 + 10.0  # the AOI grid's buffer plus room for misregistration
MAX_SHIFT_M = 6.0
_SATELLITES = ("2262", "2274", "2407", "2414", "241d", "2423", "2427", "242d", "2439", "24a3")


@dataclass(frozen=True)
class TrackLine:
    """A track centreline in scene CRS metres, with distance along it from the first vertex."""

    id: str
    xy: NDArray[np.float64]  # (N, 2) vertices; parts of a MultiLineString are concatenated
    along: NDArray[np.float64]  # (N,) metres from the first vertex
    breaks: tuple[int, ...]  # vertex indices where a new part starts (no segment before them)
    scale: float  # projected metres per geodesic metre (plan positions are geodesic)

    @property
    def length_m(self) -> float:
        return float(self.along[-1])

    def points(self, s_geodesic: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 2) CRS coordinates of points `s` geodesic metres along the centreline."""
        s = np.clip(s_geodesic * self.scale, 0.0, self.length_m)
        return np.column_stack(
            [np.interp(s, self.along, self.xy[:, 0]), np.interp(s, self.along, self.xy[:, 1])]
        )


@dataclass(frozen=True)
class Yard:
    """The AOI projected once: CRS, polygon and track lines."""

    crs: str
    polygon: BaseGeometry
    tracks: tuple[TrackLine, ...]


_YARDS: dict[tuple[str, str, str, float], Yard] = {}


def _project_yard(aoi: AOI) -> Yard:
    centroid = aoi.geometry.centroid
    crs = str(aoi.prop("crs") or utm_crs_for(centroid.x, centroid.y))
    lines = []
    for track in aoi.tracks:
        geom = project(track.geometry, crs)
        parts = list(getattr(geom, "geoms", [geom]))
        coords: list[NDArray[np.float64]] = []
        along: list[NDArray[np.float64]] = []
        breaks: list[int] = []
        total = 0.0
        for part in parts:
            xy = np.asarray(part.coords, dtype=np.float64)[:, :2]
            seg = np.hypot(*np.diff(xy, axis=0).T)
            if coords:
                breaks.append(sum(len(c) for c in coords))
            coords.append(xy)
            along.append(total + np.concatenate([[0.0], np.cumsum(seg)]))
            total += float(seg.sum())
        scale = total / max(track.length_m, 1e-9)
        lines.append(TrackLine(track.id, np.vstack(coords), np.concatenate(along), tuple(breaks), scale))
    return Yard(crs, project(aoi.geometry, crs), tuple(lines))


def yard_of(aoi: AOI) -> Yard:
    """The AOI in its UTM CRS (cached per process: scenes of one AOI share it)."""
    key = (
        aoi.id,
        str(aoi.prop("crs")),
        aoi.geometry.wkb_hex + "".join(t.geometry.wkb_hex for t in aoi.tracks),
        aoi.car_pitch_m,
    )
    if key not in _YARDS:
        _YARDS[key] = _project_yard(aoi)
    return _YARDS[key]


PLANETSCOPE_SCENE_M = (5000.0, 4500.0)  # of a PlanetScope frame's ≈ 25 × 11 km, what a clip needs
FINE_SCENE_MARGIN_M = 300.0  # around the AOI in a finer scene: room for the frame's tilt


def default_scene_size_m(aoi: AOI, gsd_m: float) -> tuple[float, float]:
    """The footprint `railwatch simulate` renders by default: a PlanetScope-like 5 × 4.5 km at
    3 m and coarser; at a finer GSD the AOI's extent plus `FINE_SCENE_MARGIN_M` on every side
    (5 × 4.5 km at 0.5 m would be 90 megapixels a band, ≈ 0.4 GB per scene to render)."""
    if gsd_m >= DEFAULT_GSD_M:
        return PLANETSCOPE_SCENE_M
    minx, miny, maxx, maxy = yard_of(aoi).polygon.bounds
    margin = 2 * (GRID_BUFFER_M + FINE_SCENE_MARGIN_M)
    return maxx - minx + margin, maxy - miny + margin


@dataclass(frozen=True)
class SceneSpec:
    """All random choices of one acquisition, drawn up front."""

    aoi_id: str
    day: dt.date
    seed: int
    scene_id: str
    acquired: dt.datetime
    published: dt.datetime
    satellite: str
    crs: str
    transform: Affine
    width: int
    height: int
    footprint: Polygon  # valid-data polygon in CRS metres (tilted like a PlanetScope frame)
    shift_m: tuple[float, float]  # content displaced east, north by this much
    sun_azimuth: float
    sun_elevation: float
    off_nadir: float
    haze: tuple[float, float, float, float]  # additive path reflectance per band
    gain: tuple[float, float, float, float]
    cloud_cover: float  # target fraction of the scene
    cloud_height_m: float
    key: int  # base key of this scene's random fields

    @property
    def gsd_m(self) -> float:
        return float(self.transform.a)


def sun_position(lon: float, lat: float, when: dt.datetime) -> tuple[float, float]:
    """Solar azimuth (° clockwise from north) and elevation (°): low-precision almanac, ±0.5°."""
    n = (when - dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)).total_seconds() / 86400.0
    mean_lon = math.radians((280.460 + 0.9856474 * n) % 360.0)
    anomaly = math.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl_lon = mean_lon + math.radians(1.915 * math.sin(anomaly) + 0.020 * math.sin(2 * anomaly))
    obliquity = math.radians(23.439 - 0.0000004 * n)
    ra = math.atan2(math.cos(obliquity) * math.sin(ecl_lon), math.cos(ecl_lon))
    dec = math.asin(math.sin(obliquity) * math.sin(ecl_lon))
    gmst_h = (18.697374558 + 24.06570982441908 * n) % 24.0
    hour_angle = math.radians(gmst_h * 15.0 + lon) - ra
    phi = math.radians(lat)
    elev = math.asin(math.sin(phi) * math.sin(dec) + math.cos(phi) * math.cos(dec) * math.cos(hour_angle))
    az = math.atan2(
        -math.sin(hour_angle), math.tan(dec) * math.cos(phi) - math.sin(phi) * math.cos(hour_angle)
    )
    return math.degrees(az) % 360.0, math.degrees(elev)


def _place_footprint(
    rng: np.random.Generator, region: BaseGeometry, size: tuple[float, float]
) -> tuple[Polygon, float, float]:
    """A tilted valid-data rectangle inscribed in a grid of `size`, and the grid's centre,
    placed at random so that `region` lies inside the rectangle (less tilt if it must)."""
    width, height = size
    minx, miny, maxx, maxy = region.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    for angle in (float(rng.uniform(7.0, 12.0)) * float(rng.choice([-1.0, 1.0])), 4.0, 0.0):
        a = math.radians(abs(angle))
        det = math.cos(a) ** 2 - math.sin(a) ** 2
        inner_w = (width * math.cos(a) - height * math.sin(a)) / det
        inner_h = (height * math.cos(a) - width * math.sin(a)) / det
        if inner_w <= 0 or inner_h <= 0:
            continue
        for _ in range(60):
            gx = cx + float(rng.uniform(-0.5, 0.5)) * (width - (maxx - minx))
            gy = cy + float(rng.uniform(-0.5, 0.5)) * (height - (maxy - miny))
            footprint = _valid_rect(gx, gy, inner_w, inner_h, angle)
            if footprint.contains(region):
                return footprint, gx, gy
    raise InvalidInput(
        f"a simulated scene of {width:g} × {height:g} m cannot hold the AOI "
        f"({maxx - minx:.0f} × {maxy - miny:.0f} m plus margins); use a larger scene_size_m"
    )


def _valid_rect(cx: float, cy: float, w: float, h: float, angle_deg: float) -> Polygon:
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return Polygon([(cx + u * ca - v * sa, cy + u * sa + v * ca) for u, v in corners])


def make_spec(
    aoi: AOI, plan: DayPlan, seed: int, scene_size_m: tuple[float, float], gsd_m: float
) -> SceneSpec:
    """Draw the acquisition of `plan.day` over `aoi`."""
    yard = yard_of(aoi)
    key = stable_key("scene", aoi.id, seed, plan.day.isoformat())
    rng = np.random.default_rng([key, 1])
    width, height = round(scene_size_m[0] / gsd_m), round(scene_size_m[1] / gsd_m)
    size = (width * gsd_m, height * gsd_m)
    minx, miny, maxx, maxy = yard.polygon.bounds
    region = box(minx, miny, maxx, maxy).buffer(GRID_BUFFER_M, join_style="mitre")
    footprint, gx, gy = _place_footprint(rng, region, size)
    transform = Affine(gsd_m, 0.0, gx - size[0] / 2, 0.0, -gsd_m, gy + size[1] / 2)

    centroid = aoi.geometry.centroid
    local_solar_h = float(rng.uniform(9.75, 11.25))
    midnight = dt.datetime(plan.day.year, plan.day.month, plan.day.day, tzinfo=dt.UTC)
    acquired = midnight + dt.timedelta(hours=local_solar_h - centroid.x / 15.0)
    acquired = acquired.replace(microsecond=int(rng.integers(0, 100)) * 10000)
    published = acquired + dt.timedelta(hours=float(rng.uniform(2.0, 6.0)))
    published = published.replace(microsecond=0)
    satellite = _SATELLITES[int(rng.integers(len(_SATELLITES)))]
    scene_id = f"{acquired:%Y%m%d_%H%M%S}_{acquired.microsecond // 10000:02d}_{satellite}"
    azimuth, elevation = sun_position(centroid.x, centroid.y, acquired)

    haze_level = 0.004 + 0.05 * plan.weather.haze
    haze = tuple(round(haze_level * f, 5) for f in (1.0, 0.62, 0.38, 0.18))
    gain = tuple(round(float(g), 4) for g in 1.0 + rng.normal(0.0, 0.025, 4))
    return SceneSpec(
        aoi_id=aoi.id,
        day=plan.day,
        seed=seed,
        scene_id=scene_id,
        acquired=acquired,
        published=published,
        satellite=satellite,
        crs=yard.crs,
        transform=transform,
        width=width,
        height=height,
        footprint=footprint,
        shift_m=(
            round(float(rng.uniform(-MAX_SHIFT_M, MAX_SHIFT_M)), 2),
            round(float(rng.uniform(-MAX_SHIFT_M, MAX_SHIFT_M)), 2),
        ),
        sun_azimuth=round(azimuth, 2),
        sun_elevation=round(elevation, 2),
        off_nadir=round(float(min(abs(rng.normal(0.0, 2.5)), 5.0)), 2),
        haze=(haze[0], haze[1], haze[2], haze[3]),
        gain=(gain[0], gain[1], gain[2], gain[3]),
        cloud_cover=plan.weather.cloud_cover,
        cloud_height_m=float(rng.uniform(800.0, 3000.0)),
        key=key,
    )
