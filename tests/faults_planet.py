"""Faults of Planet's Data API: each world reads its scenes from a double of the API
(tests/planet_double.py, through the unmodified `planet` SDK) whose items are the simulated
scenes and whose download `location`s are a loopback file server with byte ranges over the
world's scene folders. The backfill runs under the fault, the fault clears, the backfill runs
again; both are judged against a clean Planet world."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import respx

from tests.fault_lab import Case, Lab
from tests.faultkit import AOI_ID, FaultRow, World, judge
from tests.planet_double import PlanetDouble, features_of, planet_router
from tests.servers import RangeFileServer

KEY = "PLAK-railwatch-fault-lab-not-a-real-key"
SDK_BACKOFF_S = 0.2  # the SDK's retry backoff (2, 4, 8… s, up to 64) shortened for the lab
_hosts = itertools.count(1)
Change = Callable[[PlanetDouble], None]


@contextmanager
def planet_key() -> Iterator[None]:
    """A fake API key in the environment (the planet source reads PL_API_KEY)."""
    saved = os.environ.get("PL_API_KEY")
    os.environ["PL_API_KEY"] = KEY
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PL_API_KEY"]
        else:
            os.environ["PL_API_KEY"] = saved


def planet_world(lab: Lab, router: respx.MockRouter, name: str) -> tuple[World, PlanetDouble]:
    """A world whose one catalog is Planet (its own API host, so its double's state is its own),
    and that double, whose locations point to a file server of the world's scene folders."""
    from railwatch.adapters.catalogs.planet import planet_client

    api = f"https://w{next(_hosts)}.planet.test"
    source = f"planet?base_url={api}&poll_s=0.1&max_polls=5"
    world = lab.world(name, RAILWATCH_CATALOGS=json.dumps([source]))
    double = PlanetDouble(router, features_of(lab.simulated / AOI_ID, api), page_size=2, api=api)

    def start() -> tuple[Any, Callable[[], None]]:
        server = RangeFileServer(world.scenes_dir, refuse=double.refuse)
        return server, server.stop

    double.downloads = lab.server(f"planet-files-{world.home.name}", start).url
    planet_client(api)._session.max_retry_backoff = SDK_BACKOFF_S
    return world, double


def planet_fault(inject: Change, clear: Change) -> Callable[[Lab, str, str], FaultRow]:
    """The case of one fault of the API: injected before the first run, cleared before the rerun."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        with planet_key(), planet_router() as router:
            baseline = lab.baseline_of("planet", lambda: planet_world(lab, router, "planet clean")[0])
            world, api = planet_world(lab, router, fault)
            inject(api)
            during = world.backfill()
            clear(api)
            api.search_faults, api.asset_faults = [], []
            after = world.backfill()
        return judge(layer, fault, baseline, world, during, after)
    return run


def faults(search: list[Any], assets: list[Any]) -> Change:
    def inject(api: PlanetDouble) -> None:
        api.search_faults, api.asset_faults = list(search), list(assets)
    return inject


def used_up(api: PlanetDouble) -> None:
    """Nothing to clear: the run met every injected fault (else the case tested nothing)."""
    left = api.search_faults + api.asset_faults
    assert not left, f"the run did not meet the injected faults {left}"


def never_active(api: PlanetDouble) -> None:
    api.polls_to_active = 10**6


def activated(api: PlanetDouble) -> None:
    api.polls_to_active = 0


def expire_urls(status: int) -> Change:
    def inject(api: PlanetDouble) -> None:
        api.expired.add(api.generation)
        api.expired_status = status
    return inject


def fresh_urls(api: PlanetDouble) -> None:
    api.generation += 1


def deny_two(api: PlanetDouble) -> None:
    """No download permission for the scenes of the 2nd and 3rd days (the first train's)."""
    api.denied = {f["id"] for f in api.features[1:3]}


def grant(api: PlanetDouble) -> None:
    api.denied = set()


T = httpx.ReadTimeout
LAYER = "Planet API"
CASES = [
    Case(LAYER, "429 storm (6 in a row on search and on asset requests, Retry-After: 1)",
         planet_fault(faults([429] * 6, [429] * 6), used_up)),
    Case(LAYER, "5xx burst (502/503/500 on search and on asset requests)",
         planet_fault(faults([503, 502, 502, 503], [502, 503, 500, 502, 503]), used_up)),
    Case(LAYER, "timeouts (connect and read timeouts on search and asset requests)",
         planet_fault(faults([httpx.ConnectTimeout, T, T], [T, httpx.ConnectTimeout, T, T]), used_up)),
    Case(LAYER, "activation never completes during the first run", planet_fault(never_active, activated)),
    Case(LAYER, "expired download URLs (403, as S3), fresh ones next run",
         planet_fault(expire_urls(403), fresh_urls)),
    Case(LAYER, "expired download URLs (400 ExpiredToken, as GCS), fresh ones next run",
         planet_fault(expire_urls(400), fresh_urls)),
    Case(LAYER, "no download permission for two items, then granted", planet_fault(deny_two, grant)),
]
