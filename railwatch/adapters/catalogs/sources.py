"""Catalog sources from configuration strings (``RAILWATCH_CATALOGS`` entries):

- ``simulator`` — the built-in simulator's collections;
- a path to a STAC ``collection.json`` — a static catalog;
- ``stac+https://host/path?collections=a,b&max_cloud=20&...`` — a STAC API;
- ``planet`` or ``planet?max_cloud=20&stages=finalized`` — Planet's Data API (``PL_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from railwatch.adapters.catalogs.base import ASSET_MAPS, AssetMap, Catalog
from railwatch.adapters.catalogs.stac_api import StacApiCatalog, StacApiConfig
from railwatch.adapters.catalogs.static import SimulatorCatalog, StaticStacCatalog
from railwatch.errors import ConfigError

_STAC_OPTIONS: dict[str, tuple[str, type]] = {  # query option -> (StacApiConfig field, type)
    "max_cloud": ("max_cloud", float), "page_size": ("page_size", int), "rate": ("rate_per_s", float),
    "retries": ("retries", int), "backoff": ("backoff_s", float), "timeout": ("timeout_s", float),
    "sign": ("sign", str), "name": ("name", str),
}


def options(source: str, query: str, allowed: set[str]) -> dict[str, str]:
    """A source's ``?key=value`` options; an unknown key is a config error naming the known ones."""
    found = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise ConfigError(f"catalog source {source!r}: unknown option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(allowed))}")
    return found


def convert(source: str, key: str, value: str, kind: type) -> Any:
    """An option's value as `kind`, or a config error naming the option."""
    try:
        return kind(value)
    except ValueError as exc:
        raise ConfigError(f"catalog source {source!r}: option {key}={value!r} "
                          f"is not a {kind.__name__}") from exc


def asset_map(name: str | None, collections: list[str], maps: Mapping[str, AssetMap]) -> AssetMap:
    """The asset map named by `assets=`, else the one of the first collection, else the default."""
    known = {**ASSET_MAPS, **maps}
    if name is not None:
        if name not in known:
            raise ConfigError(f"asset map {name!r} is unknown; known: {', '.join(sorted(known))} "
                              "(add one with RAILWATCH_ASSET_MAPS)")
        return known[name]
    return next((known[c] for c in collections if c in known), known["default"])


def stac_api_config(source: str, maps: Mapping[str, AssetMap] | None = None) -> StacApiConfig:
    """Parse ``stac+https://host/path?collections=...&...`` into a `StacApiConfig`."""
    parts = urlsplit(source.removeprefix("stac+"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"catalog source {source!r}: expected stac+https://host/path?collections=...")
    opts = options(source, parts.query, {"collections", "assets", *_STAC_OPTIONS})
    collections = [c for c in opts.pop("collections", "").split(",") if c]
    assets = asset_map(opts.pop("assets", None), collections, maps or {})
    fields = {_STAC_OPTIONS[k][0]: convert(source, k, v, _STAC_OPTIONS[k][1]) for k, v in opts.items()}
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return StacApiConfig(url=url, collections=tuple(collections), assets=assets, **fields)


def open_catalog(source: str, simulator_dir: Path,
                 asset_maps: Mapping[str, AssetMap] | None = None) -> Catalog:
    """A catalog from a configured source string (see the module docstring)."""
    if source == "simulator":
        return SimulatorCatalog(simulator_dir)
    if source.startswith("stac+"):
        return StacApiCatalog(stac_api_config(source, asset_maps))
    if source == "planet" or source.startswith("planet?"):
        from railwatch.adapters.catalogs.planet import PlanetCatalog, planet_config

        planet: Catalog = PlanetCatalog(planet_config(source))
        return planet
    if source.endswith(".json"):  # a static collection: a file, or served over http(s)
        if not source.startswith(("http://", "https://")) and not Path(source).is_file():
            raise ConfigError(f"catalog source {source!r}: no such STAC collection file")
        return StaticStacCatalog(source, name=f"stac:{PurePosixPath(source).parent.name}")
    raise ConfigError(
        f"catalog source {source!r} is not supported; use 'simulator', a STAC collection.json path "
        "or URL, "
        "'stac+https://host/path?collections=...' or 'planet'"
    )
