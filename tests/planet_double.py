"""A stateful double of Planet's Data API at the HTTP layer (respx), shared by the Planet source's
unit tests and the Planet fault cases, so both test the unmodified `planet` SDK against the same
API shapes: quick-search pages linked by `_links._next` (filtered on acquired/updated as the API
filters), items with `_permissions`, assets going inactive → activating → active, download
`location`s, and fault knobs (an HTTP status or a transport error for the next requests of a kind).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import respx

API = "https://api.planet.com"
ASSETS = ("ortho_analytic_4b_sr", "ortho_udm2")
FILES = {"ortho_analytic_4b_sr": "analytic.tif", "ortho_udm2": "udm2.tif"}  # in a simulator scene
Fault = int | type[httpx.TransportError]  # a status to answer, or an httpx error to raise
BUNDLES = {"bundles": {"analytic_sr_udm2": {"name": "Surface reflectance 4b + UDM2",
                                            "assets": {"PSScene": list(ASSETS)}}}}


def feature_of_item(item: dict[str, Any], api: str = API) -> dict[str, Any]:
    """The Planet item of a simulated STAC item: same id, time, footprint, sun and clouds."""
    props, item_id = item["properties"], item["id"]
    return {
        "type": "Feature", "id": item_id, "geometry": item["geometry"],
        "properties": {
            "acquired": props["datetime"], "published": props.get("created", props["updated"]),
            "updated": props["updated"], "cloud_cover": props.get("eo:cloud_cover", 0.0) / 100,
            "clear_percent": props.get("pl:clear_percent", 100.0), "gsd": props.get("gsd", 3.0),
            "instrument": "PSB.SD", "item_type": "PSScene",
            "quality_category": props.get("pl:quality_category", "standard"),
            "publishing_stage": props.get("pl:publishing_stage", "finalized"),
            "view_angle": props.get("view:off_nadir"), "sun_azimuth": props.get("view:sun_azimuth"),
            "sun_elevation": props.get("view:sun_elevation"),
        },
        "assets": ["basic_analytic_4b", *ASSETS],
        "_permissions": [f"assets.{a}:download" for a in ASSETS],
        "_links": {"_self": f"{api}/data/v1/item-types/PSScene/items/{item_id}",
                   "assets": f"{api}/data/v1/item-types/PSScene/items/{item_id}/assets/"},
    }


def features_of(scenes_dir: Path, api: str = API) -> list[dict[str, Any]]:
    """The Planet items of every simulated scene in an AOI's folder, oldest first."""
    items = [json.loads(p.read_text()) for p in sorted(scenes_dir.glob("*/*.json"))]
    return [feature_of_item(i, api) for i in items if i.get("type") == "Feature"]


@contextmanager
def planet_router() -> Iterator[respx.MockRouter]:
    """respx for the Planet doubles' hosts only: requests to loopback (Prefect's API server in
    this process, the file servers) go out as usual. The SDK reads its product bundles spec from
    api.planet.com whatever the base URL (once per process), so that is answered here too."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host__in=("127.0.0.1", "localhost")).pass_through()
        router.get(f"{API}/compute/ops/bundles/spec").respond(json=BUNDLES)
        yield router


class PlanetDouble:
    """Planet's Data API at `api` as respx routes, with state: searches, activation, faults."""

    def __init__(self, router: respx.MockRouter, features: list[dict[str, Any]], page_size: int = 250,
                 api: str = API, downloads: str | None = None) -> None:
        self.features, self.page_size, self.api = features, page_size, api.rstrip("/")
        self.search_faults: list[Fault] = []  # for the next quick-searches and result pages
        self.asset_faults: list[Fault] = []  # for the next asset lists and activations
        self.polls_to_active = 2  # GETs of an activated asset list before it is active
        self.activated: dict[str, int] = {}  # item id -> asset-list GETs since activation
        self.denied: set[str] = set()  # items whose image asset the key may not download
        self.downloads = downloads  # base URL of a file server of the scene folders, if any
        self.generation = 1  # of the download URLs handed out (new ones after they expire)
        self.expired: set[int] = set()  # generations whose URLs are refused
        self.expired_status = 403  # what an expired signed URL answers
        self.key: str | None = None  # when set, the only API key answered (others: 401)
        self.bodies: list[dict[str, Any]] = []
        self.searches: dict[str, list[dict[str, Any]]] = {}
        base = re.escape(self.api)
        router.get(f"{self.api}/compute/ops/bundles/spec").respond(json=BUNDLES)
        router.post(url__regex=rf"{base}/data/v1/+quick-search.*").mock(side_effect=self.quick_search)
        router.get(url__regex=rf"{base}/data/v1/+searches/(?P<search>[^/]+)/results.*").mock(
            side_effect=self.page)
        router.get(url__regex=rf"{base}/data/v1/+item-types/PSScene/items/(?P<item>[^/]+)/assets/?$").mock(
            side_effect=self.assets)
        router.get(url__regex=rf"{base}/data/v1/+assets/(?P<item>[^/]+)/(?P<asset>[^/]+)/activate").mock(
            side_effect=self.activate)

    @staticmethod
    def _fault(faults: list[Fault], request: httpx.Request) -> httpx.Response | None:
        """The next injected fault of a kind: an error response, or a raised transport error."""
        if not faults:
            return None
        fault = faults.pop(0)
        if isinstance(fault, int):
            text = "max rate reached: retry-in 1000ms" if fault == 429 else f"injected {fault}"
            return httpx.Response(fault, headers={"Retry-After": "1"}, text=text)
        raise fault("injected by the Planet double", request=request)

    def _unauthorised(self, request: httpx.Request) -> httpx.Response | None:
        """401 as Planet answers a request whose `api-key` is not the double's `key`."""
        if self.key is None or request.headers.get("authorization") == f"api-key {self.key}":
            return None
        return httpx.Response(401, json={"message": "Invalid API key", "errors": []})

    def _page(self, search: str, n: int) -> httpx.Response:
        found = self.searches[search]
        chunk = [self._visible(f) for f in found[n * self.page_size:(n + 1) * self.page_size]]
        links = {"_self": f"{self.api}/data/v1/searches/{search}/results?_page={n}"}
        if (n + 1) * self.page_size < len(found):
            links["_next"] = f"{self.api}/data/v1/searches/{search}/results?_page={n + 1}"
        return httpx.Response(200, json={"type": "FeatureCollection", "features": chunk, "_links": links})

    def _visible(self, feature: dict[str, Any]) -> dict[str, Any]:
        if feature["id"] not in self.denied:
            return feature
        return feature | {"_permissions": [p for p in feature["_permissions"] if ASSETS[0] not in p]}

    def quick_search(self, request: httpx.Request) -> httpx.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        body = json.loads(request.content)
        self.bodies.append(body)
        if (fault := self._fault(self.search_faults, request)) is not None:
            return fault
        search = f"q{len(self.searches) + 1}"
        self.searches[search] = [f for f in self.features if _matches(f, body.get("filter", {}))]
        return self._page(search, 0)

    def page(self, request: httpx.Request, search: str) -> httpx.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if (fault := self._fault(self.search_faults, request)) is not None:
            return fault
        return self._page(search, int(request.url.params["_page"]))

    def assets(self, request: httpx.Request, item: str) -> httpx.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if (fault := self._fault(self.asset_faults, request)) is not None:
            return fault
        if item in self.activated:
            self.activated[item] += 1
        polls = self.activated.get(item)
        status = ("inactive" if polls is None else
                  "active" if polls > self.polls_to_active else "activating")
        body = {}
        for name in ASSETS:
            asset: dict[str, Any] = {
                "status": status, "type": name, "md5_digest": None, "_permissions": ["download"],
                "_links": {"_self": f"{self.api}/data/v1/assets/{item}/{name}",
                           "activate": f"{self.api}/data/v1/assets/{item}/{name}/activate",
                           "type": f"{self.api}/data/v1/asset-types/{name}"}}
            if status == "active":
                asset["location"] = self.location(item, name)
                asset["md5_digest"] = "d41d8cd98f00b204e9800998ecf8427e"
                asset["expires_at"] = "2023-10-01T06:00:00.000000"
            body[name] = asset
        return httpx.Response(200, json=body)

    def activate(self, request: httpx.Request, item: str, asset: str) -> httpx.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if (fault := self._fault(self.asset_faults, request)) is not None:
            return fault
        self.activated.setdefault(item, 0)
        return httpx.Response(202)

    def location(self, item: str, asset: str) -> str:
        """A signed download URL of the asset (of this generation of URLs)."""
        if self.downloads is None:
            return f"{self.api}/data/v1/download?token={item}-{asset}"
        return f"{self.downloads}/{item}/{FILES[asset]}?token={item}.{asset}.g{self.generation}"

    def refuse(self, path: str) -> int | None:
        """The file server's answer to an expired URL (None: serve it)."""
        token = parse_qs(urlsplit(path).query).get("token", [""])[0]
        generation = token.rpartition(".g")[2]
        return self.expired_status if generation.isdigit() and int(generation) in self.expired else None


def _matches(feature: dict[str, Any], search_filter: dict[str, Any]) -> bool:
    """Whether a feature passes the filter's date ranges (acquired, updated), as the API does;
    other filters are not applied (the doubles' items all pass them)."""
    kind, config = search_filter.get("type"), search_filter.get("config")
    if kind == "AndFilter":
        return all(_matches(feature, f) for f in config or [])
    if kind != "DateRangeFilter" or search_filter.get("field_name") not in ("acquired", "updated"):
        return True
    value = _time(feature["properties"][search_filter["field_name"]])
    tests = {"gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(tests[op](_time(bound)) for op, bound in (config or {}).items())


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
