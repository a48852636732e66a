"""The clip archive as STAC: one item per clip beside its COGs, one collection per AOI.

So that pystac / odc-stac users (and any STAC browser) can open the archive directly: each item
carries the projection of the AOI grid (proj), the bands and data types (eo, raster), each COG's
SHA-256 and size (file) and a link back to the source scene. Hrefs are relative, so an archive
stays valid when the folder or bucket is copied elsewhere.

`clip_item` and `clip_collection` are pure (ClipRef + grid in, pystac objects out); item bytes
are deterministic, so a rerun finds the stored item identical and rewrites nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pystac
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from shapely.geometry import box, mapping

from railwatch.adapters.store import ObjectInfo, ObjectStore
from railwatch.aoi import AOI
from railwatch.grid import AOIGrid, project_to_lonlat
from railwatch.models import ClipRef

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
COMMON_NAMES = {"blue": "blue", "green": "green", "red": "red", "nir": "nir"}
ITEM_NAME = "item.json"
_DATE_KEY = re.compile(r"^[^/]+/(\d{4})/(\d{2})/(\d{2})/[^/]+/item\.json$")


def item_key(clip: ClipRef) -> str:
    """The store key of a clip's STAC item (beside its image and mask)."""
    return clip.image_key.rsplit("/", 1)[0] + "/" + ITEM_NAME


def _multihash(sha256_hex: str) -> str:
    """A SHA-256 as the file extension wants it (multihash: 0x12 = sha2-256, 0x20 = 32 bytes)."""
    return "1220" + sha256_hex


def _footprint(grid: AOIGrid) -> tuple[dict[str, Any], list[float]]:
    """The clip's outline (the whole grid) in lon/lat, densified so it follows the UTM edges,
    and its bbox."""
    outline = box(*grid.bounds).segmentize(max(grid.width, grid.height) * grid.gsd_m / 8)
    lonlat = project_to_lonlat(outline, grid.crs)
    return json.loads(json.dumps(mapping(lonlat))), [round(v, 7) for v in lonlat.bounds]


def _asset(href: str, info: ObjectInfo, title: str, roles: list[str], data_type: DataType,
           bands: list[str], nodata: float | None) -> pystac.Asset:
    asset = pystac.Asset(href=href, media_type=COG, title=title, roles=roles)
    file_ext = FileExtension.ext(asset)
    file_ext.size = info.size
    if info.sha256:
        file_ext.checksum = _multihash(info.sha256)
    RasterExtension.ext(asset).bands = [RasterBand.create(data_type=data_type, nodata=nodata)
                                        for _ in bands]
    if bands and all(name in COMMON_NAMES for name in bands):
        EOExtension.ext(asset).bands = [Band.create(name=n, common_name=COMMON_NAMES[n]) for n in bands]
    return asset


def clip_item(clip: ClipRef, grid: AOIGrid, image: ObjectInfo, mask: ObjectInfo,
              bands: Iterable[str]) -> pystac.Item:
    """The STAC item of one clip; asset hrefs relative to the item's own key."""
    geometry, bbox = _footprint(grid)
    scene = clip.scene
    item = pystac.Item(
        id=clip.image_key.split("/")[-2],
        geometry=geometry,
        bbox=bbox,
        datetime=scene.acquired.astimezone(UTC),
        properties={"railwatch:valid_fraction": round(clip.valid_fraction, 6),
                    "railwatch:source": scene.source, "railwatch:scene_id": scene.scene_id},
        collection=clip.aoi_id,
    )
    if scene.cloud_cover is not None:
        EOExtension.ext(item, add_if_missing=True).cloud_cover = scene.cloud_cover
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = grid.crs
    proj.shape = [grid.height, grid.width]
    proj.transform = list(grid.transform)[:6]
    band_names = list(bands)
    item.add_asset("image", _asset("./image.tif", image, "AOI clip", ["data"], DataType.UINT16,
                                   band_names, 0))
    item.add_asset("mask", _asset("./mask.tif", mask, "usable-data mask (1 = clear)",
                                  ["data-mask"], DataType.UINT8, ["usable"], None))
    for ext in (FileExtension, RasterExtension, EOExtension):
        ext.add_to(item)
    # a download URL may be signed (Planet, Planetary Computer): its query is a credential
    source = scene.item_href or scene.image_href.split("?", 1)[0]
    item.add_link(pystac.Link(rel="derived_from", target=source,
                              media_type="application/json" if scene.item_href else COG,
                              title=f"source scene {scene.source}:{scene.scene_id}"))
    item.add_link(pystac.Link(rel="collection", target="../../../../collection.json",
                              media_type="application/json"))
    item.add_link(pystac.Link(rel="parent", target="../../../../collection.json",
                              media_type="application/json"))
    return item


def item_bytes(item: pystac.Item) -> bytes:
    """Deterministic JSON of an item (same clip → same bytes → the store skips the rewrite)."""
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    return json.dumps(data, indent=1, sort_keys=True).encode()


def clip_collection(aoi: AOI, grid: AOIGrid, item_keys: Iterable[str]) -> pystac.Collection:
    """The collection of an AOI's clips: the grid's extent, the days of its items, links to them."""
    keys = sorted(item_keys)
    days = [datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
            for m in (_DATE_KEY.match(k) for k in keys) if m]
    _, bbox = _footprint(grid)
    interval: list[datetime | None] = [min(days), max(days)] if days else [None, None]
    collection = pystac.Collection(
        id=aoi.id,
        description=f"railwatch clips of {aoi.prop('name') or aoi.id} on its fixed grid "
                    f"({grid.crs}, {grid.gsd_m:g} m, {grid.width}×{grid.height} px)",
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]),
            pystac.TemporalExtent([interval]),
        ),
        license="other",
        title=f"railwatch clips: {aoi.id}",
    )
    for ext in (ProjectionExtension, FileExtension, RasterExtension, EOExtension):
        ext.add_to(collection)
    prefix = f"{aoi.id}/"
    for key in keys:
        collection.add_link(pystac.Link(rel="item", target="./" + key.removeprefix(prefix),
                                        media_type="application/geo+json"))
    return collection


def write_collection(aoi: AOI, grid: AOIGrid, store: ObjectStore) -> str:
    """(Re)write the AOI's collection from the items in the store; its key.

    Built from a listing, so it is right after any run, including one that crashed half way.
    One writer per AOI (the flow, after the clip stage).
    """
    keys = [k for k in store.list(f"{aoi.id}/") if k.endswith("/" + ITEM_NAME)]
    collection = clip_collection(aoi, grid, keys)
    data = collection.to_dict(include_self_link=False, transform_hrefs=False)
    key = f"{aoi.id}/collection.json"
    store.put_bytes(key, json.dumps(data, indent=1, sort_keys=True).encode())
    return key
