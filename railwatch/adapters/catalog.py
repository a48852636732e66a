"""Catalogs: where scenes over an AOI are found. A small protocol and its implementations.

`StaticStacCatalog` reads a STAC collection from files (the simulator publishes one per AOI);
items are turned into `SceneRef`s by one function, `scene_from_item`, that every STAC-based
source shares, so simulated scenes are read exactly as real STAC items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pystac
from shapely.geometry import shape

from railwatch.adapters.raster import MaskKind
from railwatch.aoi import AOI
from railwatch.errors import CatalogItemError, ConfigError
from railwatch.models import SceneRef

log = logging.getLogger(__name__)

# Asset keys railwatch understands, most specific first: (key, mask kind).
IMAGE_ASSETS = ("analytic", "ortho_analytic_4b_sr", "image")
MASK_ASSETS: tuple[tuple[str, MaskKind], ...] = (
    ("udm2", "udm2"),
    ("ortho_udm2", "udm2"),
    ("scl", "scl"),
    ("mask", "binary"),
)
BAND_ORDER = ("blue", "green", "red", "nir")


@dataclass
class SearchResult:
    """Scenes found, and items skipped with the reason why."""

    scenes: list[SceneRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Catalog(Protocol):
    """Anything that can list the scenes over an AOI in a time range."""

    name: str

    def search(self, aoi: AOI, start: datetime, end: datetime) -> SearchResult: ...


def scene_from_item(item: pystac.Item, source: str) -> SceneRef:
    """The `SceneRef` of a STAC item, or `CatalogItemError` saying what the item lacks."""
    if item.datetime is None:
        raise CatalogItemError(f"item {item.id}: no datetime; railwatch needs the acquisition time")
    image_key = next((k for k in IMAGE_ASSETS if k in item.assets), None)
    if image_key is None:
        raise CatalogItemError(
            f"item {item.id}: none of the image assets {', '.join(IMAGE_ASSETS)} is present"
        )
    image = item.assets[image_key]
    mask_key, mask_kind = next(((k, kind) for k, kind in MASK_ASSETS if k in item.assets), (None, None))
    props = item.properties
    published = props.get("published") or props.get("updated") or props.get("created")
    return SceneRef(
        source=source,
        scene_id=item.id,
        acquired=item.datetime,
        published=datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None,
        cloud_cover=props.get("eo:cloud_cover"),
        sun_azimuth=props.get("view:sun_azimuth"),
        sun_elevation=props.get("view:sun_elevation"),
        image_href=image.get_absolute_href() or image.href,
        image_bands=_band_indexes(image.to_dict(), item.id),
        mask_href=(item.assets[mask_key].get_absolute_href() if mask_key else None),
        mask_kind=mask_kind,
        item_href=item.get_self_href(),
    )


def _band_indexes(asset: dict[str, Any], item_id: str) -> tuple[int, ...]:
    """1-based indexes of blue, green, red (and nir if present) from the asset's band metadata."""
    bands = asset.get("eo:bands") or asset.get("bands") or []
    names = [
        str(b.get("common_name") or b.get("eo:common_name") or b.get("name", "")).lower()
        for b in bands
    ]
    if not names:
        return (1, 2, 3, 4)
    indexes = [names.index(n) + 1 for n in BAND_ORDER if n in names]
    if len(indexes) < 3:
        raise CatalogItemError(
            f"item {item_id}: the image asset lacks blue/green/red bands (has {names})"
        )
    return tuple(indexes)


class StaticStacCatalog:
    """A STAC collection on disk (or any path pystac can read)."""

    def __init__(self, collection_href: str | Path, name: str | None = None) -> None:
        self.href = str(collection_href)
        self.name = name or "stac"

    def search(self, aoi: AOI, start: datetime, end: datetime) -> SearchResult:
        try:
            collection = pystac.Collection.from_file(self.href)
        except (OSError, pystac.STACError, ValueError) as exc:
            raise ConfigError(f"cannot open the STAC collection {self.href}: {exc}") from exc
        result = SearchResult()
        for item in collection.get_items(recursive=True):
            when = item.datetime
            if item.geometry is None or when is None or not (start <= when < end):
                continue
            if not shape(item.geometry).intersects(aoi.geometry):
                continue
            try:
                result.scenes.append(scene_from_item(item, self.name))
            except CatalogItemError as exc:
                log.warning("skipping %s", exc)
                result.skipped.append((item.id, str(exc)))
        result.scenes.sort(key=lambda s: s.acquired)
        return result


class SimulatorCatalog:
    """The built-in simulator's catalog: one static collection per AOI under a folder."""

    name = "simulator"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def search(self, aoi: AOI, start: datetime, end: datetime) -> SearchResult:
        collection = self.folder / aoi.id / "collection.json"
        if not collection.is_file():
            log.warning(
                "no simulated scenes for AOI %s under %s; run `railwatch simulate --aoi %s` first",
                aoi.id, self.folder, aoi.id,
            )
            return SearchResult()
        return StaticStacCatalog(collection, name=self.name).search(aoi, start, end)


def open_catalog(source: str, simulator_dir: Path) -> Catalog:
    """A catalog from a configured source name: ``simulator`` or a STAC collection file."""
    if source == "simulator":
        return SimulatorCatalog(simulator_dir)
    if source.endswith(".json") and not source.startswith(("http://", "https://")):
        if not Path(source).is_file():
            raise ConfigError(f"catalog source {source!r}: no such STAC collection file")
        return StaticStacCatalog(source, name=f"stac:{Path(source).parent.name}")
    raise ConfigError(
        f"catalog source {source!r} is not supported yet; use 'simulator' or a STAC collection.json path"
    )
