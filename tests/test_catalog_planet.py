"""The Planet source: the unmodified `planet` SDK over a stateful double of Planet's Data API at
the HTTP layer (tests/planet_double.py): paged quick search, items with `_permissions`, assets
going inactive → activating → active, 429s and a 5xx."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from railwatch.adapters.catalogs import open_catalog
from railwatch.adapters.catalogs.planet import PlanetCatalog, planet_config, secret_block_value
from railwatch.aoi import AOI, load_aoi
from railwatch.errors import CatalogError, ConfigError
from railwatch.settings import get_settings
from tests.planet_double import API, ASSETS, PlanetDouble, planet_router

REPO = Path(__file__).resolve().parents[1]
KEY = "PLAK-test-key-never-logged"
T0, T1 = dt.datetime(2023, 9, 1, tzinfo=dt.UTC), dt.datetime(2023, 10, 1, tzinfo=dt.UTC)


def feature(n: int, stage: str = "finalized", permitted: tuple[str, ...] = ASSETS) -> dict[str, Any]:
    item_id = f"202309{n:02d}_021500_00_24a{n % 10}"
    return {
        "type": "Feature", "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [[[130.5, 42.3], [130.7, 42.3], [130.7, 42.5],
                                                         [130.5, 42.5], [130.5, 42.3]]]},
        "properties": {
            "acquired": f"2023-09-{n:02d}T02:15:00.000000Z", "published": f"2023-09-{n:02d}T05:00:00Z",
            "updated": f"2023-09-{n:02d}T05:00:00Z", "cloud_cover": 0.07, "clear_percent": 91,
            "gsd": 3.9, "instrument": "PSB.SD", "item_type": "PSScene", "quality_category": "standard",
            "publishing_stage": stage, "view_angle": 3.1, "sun_azimuth": 151.2, "sun_elevation": 44.5,
        },
        "assets": ["basic_analytic_4b", *ASSETS],
        "_permissions": [f"assets.{a}:download" for a in permitted],
        "_links": {"_self": f"{API}/data/v1/item-types/PSScene/items/{item_id}",
                   "assets": f"{API}/data/v1/item-types/PSScene/items/{item_id}/assets/"},
    }


@pytest.fixture
def aoi() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


def features() -> list[dict[str, Any]]:
    """Seven items to download and one without permission for its image."""
    return [feature(n) for n in range(1, 8)] + [feature(8, permitted=("ortho_udm2",))]


@pytest.fixture
def planet(monkeypatch: pytest.MonkeyPatch) -> Iterator[PlanetDouble]:
    monkeypatch.setenv("PL_API_KEY", KEY)
    with respx.mock(assert_all_called=False) as router:
        yield PlanetDouble(router, features(), page_size=3)


def test_search_pages_filters_and_reports_missing_permission(
        planet: PlanetDouble, aoi: AOI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cat = open_catalog("planet?max_cloud=20&min_clear=80&stages=finalized", Path())
    assert isinstance(cat, PlanetCatalog)
    result = cat.search(aoi, T0, T1, published_after=dt.datetime(2023, 8, 1, tzinfo=dt.UTC))
    assert [s.scene_id[:8] for s in result.scenes] == [f"202309{n:02d}" for n in range(1, 8)]
    assert [(i[:8], "no download permission for ortho_analytic_4b_sr" in r)
            for i, r in result.skipped] == [("20230908", True)]
    first = result.scenes[0]
    assert first.cloud_cover == pytest.approx(7.0) and first.version == "finalized@2023-09-01T05:00:00Z"
    assert first.published == dt.datetime(2023, 9, 1, 5, tzinfo=dt.UTC)
    body = json.dumps(planet.bodies[0])
    assert planet.bodies[0]["item_types"] == ["PSScene"] and planet.bodies[0]["geometry"]["type"] == "Polygon"
    for expected in ('"field_name": "cloud_cover", "config": {"lte": 0.2}', '"clear_percent"',
                     '"quality_category", "config": ["standard"]',
                     '"publishing_stage", "config": ["finalized"]',
                     '"field_name": "updated"', '"AssetFilter"'):
        assert expected in body
    assert KEY not in caplog.text


def test_throttling_is_retried_and_server_errors_become_transient(planet: PlanetDouble, aoi: AOI) -> None:
    cat = PlanetCatalog(planet_config("planet"))
    planet.search_faults = [429]
    assert len(cat.search(aoi, T0, T1).scenes) == 7  # the SDK retried after its backoff
    planet.search_faults = [500]
    with pytest.raises(CatalogError, match="ServerError") as err:
        cat.search(aoi, T0, T1)
    assert KEY not in str(err.value)


def test_activation_waits_boundedly_for_active_assets(planet: PlanetDouble, aoi: AOI) -> None:
    cat = PlanetCatalog(planet_config("planet?poll_s=0&max_polls=5"))
    scenes = cat.search(aoi, T0, T1).scenes[:2]
    ready, failed = cat.prepare(scenes)
    assert failed == [] and [s.scene_id for s in ready] == [s.scene_id for s in scenes]
    assert ready[0].image_href.endswith(f"token={scenes[0].scene_id}-ortho_analytic_4b_sr")
    assert ready[0].mask_kind == "udm2" and ready[0].image_bands == (1, 2, 3, 4)

    planet.polls_to_active, planet.activated = 100, {}
    slow = PlanetCatalog(planet_config("planet?poll_s=0&max_polls=3"))
    ready, failed = slow.prepare(scenes)
    assert ready == [] and all("still activating after 3 polls (activating/activating)" in r
                               for _, r in failed)


def test_configuration_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="set PL_API_KEY"):
        open_catalog("planet", Path())
    with pytest.raises(ConfigError, match="unknown publishing stage"):
        planet_config("planet?stages=beta")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) cloud"):
        planet_config("planet?cloud=5")


def test_transient_api_errors_cost_a_poll_not_the_scene(planet: PlanetDouble, aoi: AOI) -> None:
    """Errors the SDK does not retry (503, 500, a connect timeout) are transient: search raises
    CatalogError (its task is retried) and activation tries again at the next poll."""
    cat = PlanetCatalog(planet_config("planet?poll_s=0&max_polls=5"))
    planet.search_faults = [httpx.ConnectTimeout]
    with pytest.raises(CatalogError, match="ConnectTimeout"):
        cat.search(aoi, T0, T1)
    scenes = cat.search(aoi, T0, T1).scenes[:2]
    planet.asset_faults = [503, httpx.ConnectTimeout, 500]
    ready, failed = cat.prepare(scenes)
    assert failed == [] and len(ready) == 2

    planet.activated, planet.asset_faults = {}, [503] * 20
    ready, failed = PlanetCatalog(planet_config("planet?poll_s=0&max_polls=2")).prepare(scenes[:1])
    assert ready == [] and "the API failed 3 times (APIError: injected 503)" in failed[0][1]
    planet.asset_faults = [403]  # not allowed: no use waiting
    ready, failed = cat.prepare(scenes[:1])
    assert ready == [] and failed[0][1].startswith("activation failed: NoPermission")


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    secret_block_value.cache_clear()


def test_the_api_key_comes_from_a_prefect_secret_block_when_one_is_named(
        aoi: AOI, fresh_settings: pytest.MonkeyPatch) -> None:
    """RAILWATCH_PLANET_API_KEY_BLOCK names a Secret block on a real Prefect server (the test
    harness's); the double answers only the block's key, and the environment's PL_API_KEY is
    wrong, so a search that passes used the block's."""
    from prefect.blocks.system import Secret
    from prefect.testing.utilities import prefect_test_harness

    fresh_settings.setenv("PL_API_KEY", "PLAK-an-old-revoked-key")
    with planet_router() as router:  # the Prefect server on loopback is not mocked
        planet = PlanetDouble(router, features(), page_size=3)
        planet.key = KEY
        with pytest.raises(ConfigError, match="Planet rejected the API key; check PL_API_KEY"):
            PlanetCatalog(planet_config("planet")).search(aoi, T0, T1)
        fresh_settings.setenv("RAILWATCH_PLANET_API_KEY_BLOCK", "planet-key")
        get_settings.cache_clear()
        with prefect_test_harness(server_startup_timeout=120):
            with pytest.raises(ConfigError, match="no Secret block named 'planet-key'"):
                PlanetCatalog(planet_config("planet"))
            Secret(value="PLAK-a-typo").save("planet-key")
            with pytest.raises(ConfigError, match="rejected the API key; check the Secret block 'planet-key"):
                PlanetCatalog(planet_config("planet")).search(aoi, T0, T1)
            Secret(value=KEY).save("planet-key", overwrite=True)
            secret_block_value.cache_clear()  # a new process reads the block again
            assert len(PlanetCatalog(planet_config("planet")).search(aoi, T0, T1).scenes) == 7
