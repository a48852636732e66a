"""Bad data from a catalog: the scene of the first loaded day is damaged in the world's copy of
the catalog, the backfill runs, then the provider's good file comes back (republished as a new
version where the damaged one was readable) and the backfill runs again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from tests.fault_lab import Case, Lab
from tests.faultkit import FaultRow, World, judge


def target_scene(world: World) -> Path:
    """The folder of the day the first train arrives (processed after the day that follows it
    when it fails first: the rerun must still give the clean counts)."""
    return sorted(p for p in world.scenes_dir.iterdir() if p.is_dir())[2]


def corrupt_header(tif: Path) -> None:
    data = bytearray(tif.read_bytes())
    data[:512] = b"\x5a" * 512
    tif.write_bytes(bytes(data))


def truncate(tif: Path) -> None:
    data = tif.read_bytes()
    tif.write_bytes(data[: len(data) * 2 // 5])


def rewrite(tif: Path, change: Callable[[np.ndarray, dict[str, object]], tuple[np.ndarray, dict[str, object]]]
            ) -> None:
    """Rewrite a GeoTIFF with changed pixels and/or profile."""
    with rasterio.open(tif) as src:
        data, profile = change(src.read(), dict(src.profile))
    profile["count"] = data.shape[0]
    tif.unlink()
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(data)


def two_bands(data: np.ndarray, profile: dict[str, object]) -> tuple[np.ndarray, dict[str, object]]:
    return data[:2], profile


def far_away(data: np.ndarray, profile: dict[str, object]) -> tuple[np.ndarray, dict[str, object]]:
    t = profile["transform"]
    return data, profile | {"transform": rasterio.Affine(t.a, t.b, t.c + 80_000, t.d, t.e, t.f)}  # type: ignore[attr-defined]


def all_nodata(data: np.ndarray, profile: dict[str, object]) -> tuple[np.ndarray, dict[str, object]]:
    return np.zeros_like(data), profile | {"nodata": 0}


def to_other_crs(tif: Path, crs: str = "EPSG:3857") -> None:
    """The scene as a provider in another CRS would deliver it (bilinear, like a real reprojection;
    nearest for the mask)."""
    with rasterio.open(tif) as src:
        transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height,
                                                               *src.bounds)
        profile = dict(src.profile) | {"crs": crs, "transform": transform, "width": width, "height": height}
        out = np.zeros((src.count, height, width), dtype=src.dtypes[0])
        nearest = tif.name.startswith("udm2")
        reproject(src.read(), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest if nearest else Resampling.bilinear)
    tif.unlink()
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(out)


def republish(scene_dir: Path) -> None:
    """Bump the item's `updated`: the provider's new version of the scene."""
    item_path = scene_dir / f"{scene_dir.name}.json"
    item = json.loads(item_path.read_text())
    item["properties"]["updated"] = "2023-12-01T00:00:00Z"
    item_path.write_text(json.dumps(item))


def damaged_file(damage: Callable[[Path], None], new_version: bool = False
                 ) -> Callable[[Lab, str, str], FaultRow]:
    """The case of one kind of damage to the target scene's image."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        world = lab.world(fault)
        scene = target_scene(world)
        saved = {p.name: p.read_bytes() for p in scene.glob("*.tif")}
        damage(scene / "analytic.tif")
        during = world.backfill()
        for name, data in saved.items():  # the good files are back
            (scene / name).write_bytes(data)
        if new_version:
            republish(scene)
        after = world.backfill()
        return judge(layer, fault, lab.baseline, world, during, after)
    return run


def other_crs(tif: Path) -> None:
    to_other_crs(tif)
    to_other_crs(tif.with_name("udm2.tif"))


CASES = [
    Case("data", "corrupt GeoTIFF header", damaged_file(corrupt_header)),
    Case("data", "truncated GeoTIFF", damaged_file(truncate)),
    Case("data", "wrong band count (2 of 4)", damaged_file(lambda t: rewrite(t, two_bands))),
    Case("data", "no overlap with the AOI", damaged_file(lambda t: rewrite(t, far_away))),
    Case("data", "all-nodata window", damaged_file(lambda t: rewrite(t, all_nodata))),
    Case("data", "scene in another CRS (EPSG:3857), then the original republished",
         damaged_file(other_crs, new_version=True)),
]
