"""Global rate limits on catalog APIs: a search takes a slot of its source's named Prefect limit
on a real (temporary) Prefect server; with no such limit, calls go on unthrottled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.testing.utilities import prefect_test_harness

from railwatch.adapters.catalogs.base import SearchResult
from railwatch.aoi import AOI
from tasks.limits import LimitedCatalog, limit_exists, limit_name, limited

pytestmark = pytest.mark.xdist_group("test_rate_limits")  # its costly module fixture: one xdist worker


@dataclass
class CountingCatalog:
    """A catalog that finds nothing and counts its calls."""

    name: str = "planet"
    calls: list[str] = field(default_factory=list)

    def search(self, aoi: AOI, start: datetime, end: datetime,
               published_after: datetime | None = None) -> SearchResult:
        self.calls.append("search")
        return SearchResult()

    def prepare(self, scenes: list[str]) -> tuple[list[str], list[str]]:
        self.calls.append("prepare")
        return scenes, []


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_remote_sources_are_limited_local_ones_are_not() -> None:
    assert limit_name("planet") == "railwatch-planet"
    assert limit_name("stac+https://earth-search.aws.element84.com/v1?collections=x") == "railwatch-stac"
    local = CountingCatalog(name="simulator")
    assert limited("simulator", local) is local


def test_calls_take_a_slot_of_the_named_limit(prefect_server: None, aoi: AOI) -> None:
    catalog = CountingCatalog()
    wrapped = limited("planet", catalog)
    assert isinstance(wrapped, LimitedCatalog) and wrapped.name == "planet"
    limit_exists.cache_clear()
    when = datetime(2023, 9, 1, tzinfo=UTC)
    wrapped.search(aoi, when, when)  # no limit on this server yet: unthrottled, one warning
    assert catalog.calls == ["search"] and not limit_exists("railwatch-planet")

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
            name="railwatch-planet", limit=10, slot_decay_per_second=0.01))
        limit_exists.cache_clear()
        wrapped.search(aoi, when, when)
        assert wrapped.prepare(["s1"]) == (["s1"], [])  # other capabilities pass through, limited
        used = client.read_global_concurrency_limit_by_name("railwatch-planet").active_slots
    assert catalog.calls == ["search", "search", "prepare"]
    assert used == 2  # slots decay slowly (0.01/s): both calls are still counted
