"""Static STAC catalogs on disk: any collection file, and the simulator's one per AOI."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from urllib.error import HTTPError, URLError

import pystac
from shapely.geometry import shape

from railwatch.adapters.catalogs.base import ASSET_MAPS, AssetMap, SearchResult, in_window, parse_time
from railwatch.aoi import AOI
from railwatch.errors import CatalogError, ConfigError

log = logging.getLogger(__name__)


def published_before(item: pystac.Item, after: datetime | None) -> bool:
    """True when the item was published (or updated) no later than `after`: already seen."""
    if after is None:
        return False
    props = item.properties
    when = parse_time(props.get("updated") or props.get("published") or props.get("created"))
    return when is not None and when <= after


_ITEMS: OrderedDict[Path, tuple[tuple[int, int], pystac.Item]] = OrderedDict()
_ITEMS_KEPT = 20_000  # parsed items kept per process (a few kB each)
_ITEMS_LOCK = threading.Lock()


def collection_items(href: str) -> list[pystac.Item]:
    """The items of a STAC collection. A collection file on disk that links its items directly
    (as the simulator's do) has each item file parsed once per process and kept while the file
    is unchanged (its size and modification time): a backfill searches the same collection once
    per date chunk, and reading its year of items was most of the flow's search time. Anything
    else (a URL, child catalogs, items elsewhere) is read by pystac every time."""
    path = Path(href)
    if "://" in href or not path.is_file():
        return list(pystac.Collection.from_file(href).get_items(recursive=True))
    links = json.loads(path.read_text()).get("links", [])
    if any(link.get("rel") == "child" or "://" in str(link.get("href", "")) for link in links):
        return list(pystac.Collection.from_file(href).get_items(recursive=True))
    return [_item(path.parent / str(link["href"])) for link in links if link.get("rel") == "item"]


def _item(path: Path) -> pystac.Item:
    path = path.resolve()
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    with _ITEMS_LOCK:
        held = _ITEMS.get(path)
    if held is None or held[0] != version:
        held = (version, pystac.Item.from_file(str(path)))
    with _ITEMS_LOCK:
        _ITEMS[path] = held
        _ITEMS.move_to_end(path)
        while len(_ITEMS) > _ITEMS_KEPT:
            _ITEMS.popitem(last=False)
    return held[1]


class StaticStacCatalog:
    """A STAC collection on disk (or any path pystac can read)."""

    def __init__(self, collection_href: str | Path, name: str | None = None,
                 assets: AssetMap | None = None) -> None:
        self.href = str(collection_href)
        self.name = name or "stac"
        self.assets = assets or ASSET_MAPS["default"]

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        try:
            items = [
                item for item in collection_items(self.href)
                if item.geometry is not None and in_window(item, start, end)
                and shape(item.geometry).intersects(aoi.geometry)
                and not published_before(item, published_after)
            ]
        except HTTPError as exc:  # a collection served over http(s): the server may recover
            kind = CatalogError if exc.code in (408, 429) or exc.code >= 500 else ConfigError
            raise kind(f"cannot read the STAC collection {self.href}: HTTP {exc.code} {exc.reason}") from exc
        except URLError as exc:
            raise CatalogError(f"cannot reach the STAC collection {self.href}: {exc.reason}") from exc
        except (OSError, pystac.STACError, ValueError) as exc:
            raise ConfigError(f"cannot open the STAC collection {self.href}: {exc}") from exc
        result = SearchResult()
        result.add_items(items, self.name, self.assets)
        result.scenes.sort(key=lambda s: s.acquired)
        return result


class SimulatorCatalog:
    """The built-in simulator's catalog: one static collection per AOI under a folder."""

    name = "simulator"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        collection = self.folder / aoi.id / "collection.json"
        if not collection.is_file():
            log.warning(
                "no simulated scenes for AOI %s under %s; run `railwatch simulate --aoi %s` first",
                aoi.id, self.folder, aoi.id,
            )
            return SearchResult()
        return StaticStacCatalog(collection, name=self.name).search(aoi, start, end, published_after)
