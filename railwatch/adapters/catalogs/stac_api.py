"""A STAC API as a catalog (Earth Search, Planetary Computer, a team's own pgstac), via pystac-client.

Searches by the AOI's geometry (`intersects`), the acquisition range and the collections; the
cloud filter goes to the server as CQL2 (`filter`) or `query`, whichever the API conforms to.
Every page is read (`limit` is the page size, there is no `max_items` cap); requests share a
per-host rate limit and are retried with backoff honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pystac import STACError
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import mapping

from railwatch.adapters.catalogs.base import ASSET_MAPS, AssetMap, SearchResult, in_window
from railwatch.adapters.catalogs.http import LimitedAdapter, RateLimiter, limiter_for, retry_policy
from railwatch.adapters.catalogs.static import published_before
from railwatch.aoi import AOI
from railwatch.errors import CatalogError, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StacApiConfig:
    """One STAC API source: where, which collections, how to read their items, how politely."""

    url: str
    collections: tuple[str, ...]
    assets: AssetMap = field(default_factory=lambda: ASSET_MAPS["default"])
    max_cloud: float | None = None
    page_size: int = 100
    rate_per_s: float = 5.0
    retries: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 60.0
    sign: str | None = None  # "planetary-computer": sign asset hrefs (needs the optional package)
    name: str = ""

    @property
    def source_name(self) -> str:
        return self.name or f"stac:{urlsplit(self.url).netloc}/{'+'.join(self.collections)}"


def _signer(kind: str | None) -> Callable[[Any], None] | None:
    """The item modifier that signs asset hrefs, or None; an unknown kind is a config error."""
    if kind is None:
        return None
    if kind != "planetary-computer":
        raise ConfigError(f"STAC source: unknown sign={kind!r}; the only signer is 'planetary-computer'")
    try:
        import planetary_computer
    except ImportError as exc:
        raise ConfigError("sign=planetary-computer needs its package: "
                          "pip install planetary-computer") from exc
    sign: Callable[[Any], None] = planetary_computer.sign_inplace
    return sign


def _api_error(exc: Exception, what: str) -> Exception:
    """Throttling, server errors and transport failures may pass; other answers need a fix."""
    while not isinstance(exc, APIError) and isinstance(exc.__cause__ or exc.__context__, Exception):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]  # pystac wraps APIError
    status = getattr(exc, "status_code", None)
    message = f"{what}: {'HTTP ' + str(status) + ': ' if status else ''}{str(exc)[:300]}"
    if status is None or status == 429 or status >= 500:
        return CatalogError(message)
    return ConfigError(message)


class StacApiCatalog:
    """Scenes over an AOI from a STAC API's item search."""

    def __init__(self, config: StacApiConfig) -> None:
        if not config.collections:
            raise ConfigError(f"STAC source {config.url}: name the collections to search "
                              "(?collections=sentinel-2-l2a)")
        self.config = config
        self.name = config.source_name
        self.limiter: RateLimiter = limiter_for(urlsplit(config.url).netloc, config.rate_per_s)
        self._client: Client | None = None

    def client(self) -> Client:
        """The opened API (its landing page read once), with rate limit and retries mounted."""
        if self._client is None:
            io = StacApiIO(timeout=self.config.timeout_s, max_retries=None)
            adapter = LimitedAdapter(self.limiter, retry_policy(self.config.retries, self.config.backoff_s))
            io.session.mount("http://", adapter)
            io.session.mount("https://", adapter)
            try:
                self._client = Client.open(self.config.url, stac_io=io,
                                           modifier=_signer(self.config.sign))
            except (APIError, STACError) as exc:
                raise _api_error(exc, f"cannot open the STAC API {self.config.url}") from exc
        return self._client

    def search_parameters(self, aoi: AOI, start: datetime, end: datetime) -> dict[str, Any]:
        """Item-search parameters: the cloud filter as CQL2 or `query` where the API conforms."""
        params: dict[str, Any] = {
            "collections": list(self.config.collections),
            "intersects": mapping(aoi.geometry),
            "datetime": [start, end],
            "limit": self.config.page_size,
            "max_items": None,
        }
        cloud = self.config.max_cloud
        client = self.client()
        if cloud is not None and client.conforms_to(ConformanceClasses.FILTER):
            params["filter"] = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, cloud]}
            params["filter_lang"] = "cql2-json"
        elif cloud is not None and client.conforms_to(ConformanceClasses.QUERY):
            params["query"] = {"eo:cloud_cover": {"lte": cloud}}
        return params

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        params = self.search_parameters(aoi, start, end)
        cloud = self.config.max_cloud
        items = []
        try:
            for page in self.client().search(**params).pages():
                items.extend(page.items)
        except (APIError, STACError) as exc:
            raise _api_error(exc, f"STAC search on {self.config.url} failed") from exc
        except json.JSONDecodeError as exc:  # a page cut short on the way may come whole next time
            raise CatalogError(f"STAC search on {self.config.url} failed: a page was not valid JSON "
                               f"({exc}; cut short by a proxy?)") from exc
        items = [
            i for i in items
            if in_window(i, start, end)  # STAC ranges are inclusive; odd times are skipped with why
            and not published_before(i, published_after)
            and (cloud is None or i.properties.get("eo:cloud_cover", 0.0) <= cloud)
        ]
        result = SearchResult()
        result.add_items(items, self.name, self.config.assets)
        result.scenes.sort(key=lambda s: (s.acquired, s.scene_id))
        log.info("%s: %d item(s) over %s, %d skipped", self.name, len(items), aoi.id, len(result.skipped))
        return result
