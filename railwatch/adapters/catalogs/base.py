"""What every catalog shares: the `Catalog` protocol, `SearchResult`, asset maps and the one
function, `scene_from_item`, that turns any STAC item (static file, STAC API, simulator) into a
`SceneRef`, so simulated scenes are read exactly as real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pystac
from pydantic import BaseModel, ConfigDict, Field, model_validator

from railwatch.adapters.raster import MaskKind
from railwatch.aoi import AOI
from railwatch.errors import CatalogItemError
from railwatch.models import SceneRef

log = logging.getLogger(__name__)

BAND_ORDER = ("blue", "green", "red", "nir")


class AssetMap(BaseModel):
    """Which asset keys of a collection's items hold the image and the usable-data mask.

    Either `image` (multi-band assets, the first present wins; bands found from `eo:bands`) or
    `bands` (one single-band asset per colour, in the order blue, green, red[, nir]). Mask keys
    are tried in order. Configuration, not code: new collections need only a new map.
    """

    model_config = ConfigDict(frozen=True)

    image: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    masks: tuple[tuple[str, MaskKind], ...] = ()
    require_mask: bool = Field(False, description="Skip items that have none of the mask assets.")

    @model_validator(mode="after")
    def _one_image_kind(self) -> AssetMap:
        if bool(self.image) == bool(self.bands):
            raise ValueError("an asset map names either `image` keys or 3-4 `bands` keys, not both")
        if self.bands and len(self.bands) not in (3, 4):
            raise ValueError(f"`bands` must list blue, green, red[, nir] keys, got {list(self.bands)}")
        return self


# Built-in maps by name; settings may add more (RAILWATCH_ASSET_MAPS) or override these.
ASSET_MAPS: dict[str, AssetMap] = {
    # PlanetScope-like multi-band items: the simulator, static catalogs, Planet's own STAC.
    "default": AssetMap(
        image=("analytic", "ortho_analytic_4b_sr", "image"),
        masks=(("udm2", "udm2"), ("ortho_udm2", "udm2"), ("scl", "scl"), ("mask", "binary")),
    ),
    # Earth Search (element84) Sentinel-2 L2A: one COG per band, SCL as the mask.
    "sentinel-2-l2a": AssetMap(bands=("blue", "green", "red", "nir"), masks=(("scl", "scl"),),
                               require_mask=True),
    # Planetary Computer Sentinel-2 L2A: same product, band-named keys (hrefs need signing).
    "pc-sentinel-2-l2a": AssetMap(bands=("B02", "B03", "B04", "B08"), masks=(("SCL", "scl"),),
                                  require_mask=True),
}


@dataclass
class SearchResult:
    """Scenes found, and items skipped with the reason why."""

    scenes: list[SceneRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add_items(self, items: Iterable[pystac.Item], source: str, assets: AssetMap) -> None:
        """Turn items into scenes; an item railwatch cannot use is skipped with its reason."""
        for item in items:
            try:
                self.scenes.append(scene_from_item(item, source, assets))
            except CatalogItemError as exc:
                log.warning("%s: skipping %s", source, exc)
                self.skipped.append((item.id, str(exc)))


class Catalog(Protocol):
    """Anything that can list the scenes over an AOI acquired in [start, end).

    `published_after` narrows the search to scenes published (or updated) after that time where
    the source can filter on it; callers must not rely on it (the registry dedups anyway).
    """

    name: str

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult: ...


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (with a trailing Z or an offset) or None."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def in_window(item: pystac.Item, start: datetime, end: datetime) -> bool:
    """True when the item was acquired in [start, end) — or its time is unusable (none, or no
    time zone): such an item is kept so that `scene_from_item` skips it with the reason."""
    when = item.datetime
    return when is None or when.tzinfo is None or start <= when < end


def scene_from_item(item: pystac.Item, source: str, assets: AssetMap | None = None) -> SceneRef:
    """The `SceneRef` of a STAC item, or `CatalogItemError` saying what the item lacks."""
    assets = assets or ASSET_MAPS["default"]
    if item.datetime is None:
        span = [item.properties.get(k) for k in ("start_datetime", "end_datetime")]
        only = f" (only the range {span[0]} .. {span[1]})" if any(span) else ""
        raise CatalogItemError(f"item {item.id}: no datetime{only}; railwatch needs the acquisition time")
    if item.datetime.tzinfo is None:
        raise CatalogItemError(f"item {item.id}: datetime {item.datetime.isoformat()!r} has no time "
                               "zone; STAC datetimes are RFC 3339 (e.g. 2023-09-22T01:56:53Z)")
    band_hrefs: tuple[str, ...] = ()
    image_bands: tuple[int, ...]
    if assets.bands:
        missing = [k for k in assets.bands if k not in item.assets]
        if missing:
            raise CatalogItemError(f"item {item.id}: lacks the band assets {', '.join(missing)} "
                                   f"(expected {', '.join(assets.bands)})")
        band_hrefs = tuple(_href(item.assets[k]) for k in assets.bands)
        image_href, image_bands = band_hrefs[0], (1,)  # one band per file: ingestion reads band_hrefs
    else:
        image_key = next((k for k in assets.image if k in item.assets), None)
        if image_key is None:
            raise CatalogItemError(
                f"item {item.id}: none of the image assets {', '.join(assets.image)} is present"
            )
        image_href = _href(item.assets[image_key])
        image_bands = _band_indexes(item.assets[image_key].to_dict(), item.id)
    mask_key, mask_kind = next(((k, kind) for k, kind in assets.masks if k in item.assets), (None, None))
    if mask_key is None and assets.require_mask:
        raise CatalogItemError(f"item {item.id}: none of the mask assets "
                               f"{', '.join(k for k, _ in assets.masks)} is present")
    props = item.properties
    published = parse_time(props.get("updated") or props.get("published") or props.get("created"))
    return SceneRef(
        source=source,
        scene_id=item.id,
        acquired=item.datetime,
        published=published,
        version=_version(props),
        cloud_cover=props.get("eo:cloud_cover"),
        sun_azimuth=props.get("view:sun_azimuth"),
        sun_elevation=props.get("view:sun_elevation"),
        image_href=image_href,
        image_bands=image_bands,
        band_hrefs=band_hrefs,
        mask_href=_href(item.assets[mask_key]) if mask_key else None,
        mask_kind=mask_kind,
        item_href=item.get_self_href(),
    )


def _version(props: dict[str, Any]) -> str | None:
    """What changes when a provider republishes a scene: its stage and its update time."""
    stamp = props.get("updated") or props.get("published") or props.get("created")
    stage = props.get("pl:publishing_stage") or props.get("publishing_stage")
    if stamp is None and stage is None:
        return None
    return f"{stage}@{stamp}" if stage else str(stamp)


def _href(asset: pystac.Asset) -> str:
    return asset.get_absolute_href() or asset.href


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
