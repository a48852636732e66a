"""Planet's Data API as a catalog, through the `planet` SDK v3.

One SDK `Session` per process (per key and base URL): the SDK's rate limiter (≈10 req/s) and its
retries (429/502, exponential backoff) live in the Session, so several Sessions would bypass it.
Search is a PSScene quick search; scenes whose assets must be activated before they can be read
are made ready by `prepare`, which activates and polls with a bounded number of polls.

The SDK retries 429, 502 and some network errors itself; other 5xx and timeouts it raises. Those
become `CatalogError` (transient: the search task is retried), and in `prepare` a transient error
costs one poll, not the scene.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import httpx
from planet import Auth, Planet, Session, data_filter
from planet import exceptions as pl_errors
from planet.specs import FetchBundlesSpecError
from shapely.geometry import mapping

from railwatch.adapters.catalogs.base import SearchResult, parse_time
from railwatch.adapters.catalogs.sources import convert, options
from railwatch.aoi import AOI
from railwatch.errors import CatalogError, CatalogItemError, ConfigError
from railwatch.models import SceneRef
from railwatch.settings import get_settings

ITEM_TYPE = "PSScene"
IMAGE_ASSET, MASK_ASSET = "ortho_analytic_4b_sr", "ortho_udm2"
PLANET_BANDS = (1, 2, 3, 4)  # ortho_analytic_4b_sr: blue, green, red, nir
# What may pass: throttling after the SDK's retries, 5xx (a bare APIError is a status the SDK does
# not map, e.g. 503/504), the network, and the SDK's first fetch of its bundles spec.
API_ERRORS = (pl_errors.PlanetError, httpx.TransportError, FetchBundlesSpecError)
TRANSIENT = (pl_errors.TooManyRequests, pl_errors.ServerError, pl_errors.BadGateway,
             httpx.TransportError, FetchBundlesSpecError)


@dataclass(frozen=True)
class PlanetConfig:
    """Filters of the PSScene search and the bounds of activation waiting."""

    max_cloud: float | None = None  # percent, 0-100 (Planet's cloud_cover is a 0-1 fraction)
    min_clear: float | None = None  # clear_percent, 0-100
    stages: tuple[str, ...] = ("standard", "finalized")  # publishing_stage values accepted
    base_url: str | None = None  # default: the SDK's (https://api.planet.com)
    poll_s: float = 10.0  # between activation polls
    max_polls: int = 30  # then the scene is reported as still activating
    name: str = "planet"


def planet_config(source: str) -> PlanetConfig:
    """Parse ``planet?max_cloud=20&min_clear=80&stages=finalized&...``."""
    query = source.partition("?")[2]
    kinds: dict[str, type] = {"max_cloud": float, "min_clear": float, "poll_s": float, "max_polls": int,
                              "base_url": str, "name": str}
    opts = options(source, query, {"stages", *kinds})
    stages = tuple(s for s in opts.pop("stages", "standard,finalized").split(",") if s)
    bad = sorted(set(stages) - {"preview", "standard", "finalized"})
    if bad:
        raise ConfigError(f"catalog source {source!r}: unknown publishing stage(s) {', '.join(bad)}; "
                          "use preview, standard, finalized")
    return PlanetConfig(stages=stages, **{k: convert(source, k, v, kinds[k]) for k, v in opts.items()})


_SESSIONS: dict[tuple[str, str | None], Planet] = {}
_SESSIONS_LOCK = threading.Lock()


def planet_client(base_url: str | None) -> Planet:
    """The process's one SDK client per (API key, base URL)."""
    key = planet_api_key()
    with _SESSIONS_LOCK:
        if (key, base_url) not in _SESSIONS:
            _SESSIONS[key, base_url] = Planet(session=Session(auth=Auth.from_key(key)), base_url=base_url)
        return _SESSIONS[key, base_url]


def planet_api_key() -> str:
    """The Planet API key: from the Prefect Secret block RAILWATCH_PLANET_API_KEY_BLOCK names,
    else from PL_API_KEY."""
    block = get_settings().planet_api_key_block
    key = secret_block_value(block) if block else os.environ.get("PL_API_KEY", "")
    if not key.strip():
        raise ConfigError(f"{key_source()} (RAILWATCH_PLANET_API_KEY_BLOCK) is empty; save the "
                          "Planet API key in it" if block else
                          "the 'planet' catalog needs an API key: set PL_API_KEY (from your Planet "
                          "account settings), or RAILWATCH_PLANET_API_KEY_BLOCK to a Prefect Secret "
                          "block holding it")
    return key.strip()


def key_source() -> str:
    """Where the key comes from, as an error message names it."""
    block = get_settings().planet_api_key_block
    return f"the Secret block {block!r}" if block else "PL_API_KEY"


@lru_cache(maxsize=8)
def secret_block_value(name: str) -> str:
    """The value of the Prefect Secret block `name`, read once per process from the Prefect API
    (Prefect is imported here: a search that needs no block does not pay for it)."""
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(name, _sync=True)  # type: ignore[call-arg]  # (async_dispatch's switch)
    except ValueError as exc:  # Prefect: "Unable to find block document named ..."
        raise ConfigError(f"RAILWATCH_PLANET_API_KEY_BLOCK: no Secret block named {name!r} on the "
                          "Prefect server; create it (README: Catalogs)") from exc
    if not isinstance(block, Secret):  # `_sync=True`: never a coroutine
        raise TypeError(f"Secret.load returned {type(block).__name__}")
    return str(block.get())


def _transient(exc: Exception) -> bool:
    return isinstance(exc, TRANSIENT) or type(exc) is pl_errors.APIError


def _describe(exc: Exception) -> str:
    """The error's type and its first 300 characters (an SDK error's text is the API's body)."""
    text = str(exc).strip()[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _planet_error(exc: Exception, what: str) -> Exception:
    """Bad keys and queries need a fix; throttling, server and network errors may pass."""
    if isinstance(exc, pl_errors.InvalidAPIKey):
        return ConfigError(f"{what}: Planet rejected the API key; check {key_source()}")
    if isinstance(exc, pl_errors.BadQuery | pl_errors.NoPermission | pl_errors.OverQuota):
        return ConfigError(f"{what}: {_describe(exc)}")
    return CatalogError(f"{what}: {_describe(exc)}")


class PlanetCatalog:
    """PSScene items over an AOI from Planet's quick search."""

    def __init__(self, config: PlanetConfig | None = None) -> None:
        self.config = config or PlanetConfig()
        self.name = self.config.name
        self.client = planet_client(self.config.base_url)

    def search_filter(self, aoi: AOI, start: datetime, end: datetime,
                      published_after: datetime | None) -> dict[str, Any]:
        """The quick-search filter: acquired range, quality, stages, clouds, the two assets."""
        c = self.config
        parts = [
            data_filter.date_range_filter("acquired", gte=start, lt=end),
            data_filter.string_in_filter("quality_category", ["standard"]),
            data_filter.string_in_filter("publishing_stage", list(c.stages)),
            data_filter.asset_filter([IMAGE_ASSET, MASK_ASSET]),
        ]
        if c.max_cloud is not None:
            parts.append(data_filter.range_filter("cloud_cover", lte=c.max_cloud / 100))
        if c.min_clear is not None:
            parts.append(data_filter.range_filter("clear_percent", gte=c.min_clear))
        if published_after is not None:
            parts.append(data_filter.date_range_filter("updated", gt=published_after))
        combined: dict[str, Any] = data_filter.and_filter(parts)
        return combined

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        search_filter = self.search_filter(aoi, start, end, published_after)
        try:
            items = list(self.client.data.search([ITEM_TYPE], search_filter=search_filter,
                                                 geometry=mapping(aoi.geometry), limit=0))
        except API_ERRORS as exc:
            raise _planet_error(exc, f"Planet search over {aoi.id}") from exc
        result = SearchResult()
        for item in items:
            try:
                result.scenes.append(self.scene(item))
            except CatalogItemError as exc:
                result.skipped.append((str(item.get("id")), str(exc)))
        result.scenes.sort(key=lambda s: (s.acquired, s.scene_id))
        return result

    def scene(self, item: dict[str, Any]) -> SceneRef:
        """A SceneRef whose hrefs are ``planet://`` references until `prepare` activates them."""
        item_id, props = str(item["id"]), item.get("properties", {})
        allowed = set(item.get("_permissions", []))
        missing = [a for a in (IMAGE_ASSET, MASK_ASSET) if f"assets.{a}:download" not in allowed]
        if missing:
            raise CatalogItemError(f"item {item_id}: no download permission for {', '.join(missing)} "
                                   "(outside your Planet plan's area or product access)")
        acquired = parse_time(props.get("acquired"))
        if acquired is None:
            raise CatalogItemError(f"item {item_id}: no acquired time")
        cloud = props.get("cloud_cover")
        stamp = props.get("updated") or props.get("published")
        return SceneRef(
            source=self.name, scene_id=item_id, acquired=acquired, published=parse_time(stamp),
            version=f"{props.get('publishing_stage')}@{stamp}",
            cloud_cover=None if cloud is None else 100 * float(cloud),
            sun_azimuth=props.get("sun_azimuth"), sun_elevation=props.get("sun_elevation"),
            image_href=f"planet://{ITEM_TYPE}/{item_id}/{IMAGE_ASSET}", image_bands=PLANET_BANDS,
            mask_href=f"planet://{ITEM_TYPE}/{item_id}/{MASK_ASSET}", mask_kind="udm2",
            item_href=item.get("_links", {}).get("_self"),
        )

    def prepare(self, scenes: list[SceneRef]) -> tuple[list[SceneRef], list[tuple[SceneRef, str]]]:
        """Activate the scenes' assets and wait, boundedly, until they are active.

        Returns the scenes with download hrefs, and the ones not ready with the reason: still
        activating after `max_polls` polls, or the API failing for the scene (tried again next
        run). A transient error (throttling, 5xx, timeout) costs the scene one poll, so a burst
        does not fail scenes the next poll would have made ready; other errors fail it at once.
        """
        states: dict[str, dict[str, Any] | None] = {s.scene_id: None for s in scenes}  # None: not listed
        errors: dict[str, str] = {}  # the last transient error of each scene
        failed: list[tuple[SceneRef, str]] = []
        for poll in range(self.config.max_polls + 1):  # the activation, then the polls
            waiting = [i for i, a in states.items() if a is None or not _active(a)]
            if not waiting:
                break
            if poll:
                time.sleep(self.config.poll_s)
            for item_id in waiting:
                try:
                    states[item_id] = self._activate(item_id)
                except (*API_ERRORS, CatalogItemError) as exc:
                    if not _transient(exc):
                        scene = next(s for s in scenes if s.scene_id == item_id)
                        failed.append((scene, f"activation failed: {_describe(exc)}"))
                        del states[item_id]
                    else:
                        errors[item_id] = _describe(exc)
        ready = []
        for scene in (s for s in scenes if s.scene_id in states):
            assets = states[scene.scene_id]
            if assets is not None and _active(assets):
                ready.append(scene.model_copy(update={"image_href": assets[IMAGE_ASSET]["location"],
                                                      "mask_href": assets[MASK_ASSET]["location"]}))
            elif assets is None:
                failed.append((scene, f"activation failed: the API failed {self.config.max_polls + 1} "
                                      f"times ({errors[scene.scene_id]}); tried again next run"))
            else:
                status = "/".join(str(assets[n].get("status")) for n in (IMAGE_ASSET, MASK_ASSET))
                failed.append((scene, f"assets still activating after {self.config.max_polls} polls "
                                      f"({status}); tried again next run"))
        return ready, failed

    def _activate(self, item_id: str) -> dict[str, Any]:
        """The item's two assets now, each activated if it is inactive (the SDK does nothing for
        an asset already activating or active, so this is also one poll)."""
        assets = self._assets(item_id)
        for name in (IMAGE_ASSET, MASK_ASSET):
            self.client.data.activate_asset(assets[name])
        return assets

    def _assets(self, item_id: str) -> dict[str, Any]:
        """The item's two assets as the API describes them now."""
        assets: dict[str, Any] = self.client.data.list_item_assets(ITEM_TYPE, item_id)
        missing = [a for a in (IMAGE_ASSET, MASK_ASSET) if a not in assets]
        if missing:
            raise CatalogItemError(f"item {item_id}: the API lists no {', '.join(missing)} asset")
        return assets


def _active(assets: dict[str, Any]) -> bool:
    return all(assets[n].get("status") == "active" and assets[n].get("location")
               for n in (IMAGE_ASSET, MASK_ASSET))
