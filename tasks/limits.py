"""Global rate limits on catalog API calls, shared by every flow run of a Prefect server.

Parallel runs (a watch and a backfill, several workers) would each stay under a provider's rate
on their own and trip its 429s together. Each catalog search or activation takes a slot of the
source's named Prefect limit (`prefect gcl create railwatch-planet --limit 5 --slot-decay-per-second 5`).
Where the limit does not exist (an ephemeral server, a fresh install) calls go unthrottled, with
one warning per process instead of one per call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound

from railwatch.adapters.catalogs.base import Catalog, SearchResult
from railwatch.aoi import AOI

log = logging.getLogger(__name__)


def limit_name(source: str) -> str | None:
    """The global limit of a catalog source: one per remote API, none for local catalogs."""
    if source.startswith("planet"):
        return "railwatch-planet"
    if source.startswith("stac+"):
        return "railwatch-stac"
    return None


@cache
def limit_exists(name: str) -> bool:
    """Whether the server has the limit (asked once per process)."""
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        log.warning("global concurrency limit %r does not exist: %s calls are not rate limited "
                    "(create it: prefect gcl create %s --limit 5 --slot-decay-per-second 5)",
                    name, name.removeprefix("railwatch-"), name)
        return False
    return True


def take_slot(name: str | None) -> None:
    """Wait for a slot of the named rate limit, if it exists."""
    if name is not None and limit_exists(name):
        rate_limit(name, strict=False)


@dataclass
class LimitedCatalog:
    """A catalog whose searches (and Planet's activations) take a slot of its global limit."""

    inner: Catalog
    limit: str | None
    name: str

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        take_slot(self.limit)
        return self.inner.search(aoi, start, end, published_after)

    def __getattr__(self, attr: str) -> Any:
        """Other capabilities (`prepare`) pass through, throttled the same way."""
        if attr.startswith("__") or attr in ("inner", "limit", "name"):  # copy/pickle: not set yet
            raise AttributeError(attr)
        found = getattr(self.inner, attr)
        if not callable(found):
            return found

        def limited(*args: Any, **kwargs: Any) -> Any:
            take_slot(self.limit)
            return found(*args, **kwargs)
        return limited


def limited(source: str, catalog: Catalog) -> Catalog:
    """The catalog itself when its source has no limit, else a throttled wrapper."""
    name = limit_name(source)
    return catalog if name is None else LimitedCatalog(catalog, name, catalog.name)
