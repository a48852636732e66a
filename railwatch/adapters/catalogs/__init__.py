"""Catalogs: where scenes over an AOI are found. A small protocol and its sources."""

from railwatch.adapters.catalogs.base import (
    ASSET_MAPS,
    AssetMap,
    Catalog,
    SearchResult,
    scene_from_item,
)
from railwatch.adapters.catalogs.sources import open_catalog
from railwatch.adapters.catalogs.stac_api import StacApiCatalog, StacApiConfig
from railwatch.adapters.catalogs.static import SimulatorCatalog, StaticStacCatalog

__all__ = [
    "ASSET_MAPS",
    "AssetMap",
    "Catalog",
    "SearchResult",
    "SimulatorCatalog",
    "StacApiCatalog",
    "StacApiConfig",
    "StaticStacCatalog",
    "open_catalog",
    "scene_from_item",
]
