"""Shared fixtures: real servers on loopback, each session-scoped and started only by the tests
that ask for it — PostgreSQL (one server, a fresh database per store test), a STAC API
(stac-fastapi-pgstac on that server) loaded with the simulator's STAC items for the demo AOI,
an S3 server (moto's server mode), and a Prefect server for the CLI runs."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from railwatch.adapters.s3 import S3Config
from railwatch.aoi import AOI, load_aoi
from railwatch.simulate.scene import make_spec
from railwatch.simulate.season import plan_season
from railwatch.simulate.stac import build_collection, build_item
from tests.cli_runs import PrefectServer, prefect_server
from tests.pg import PgServer, running_postgres, why_no_postgres
from tests.servers import CountingProxy, MotoServer
from tests.stac_api_server import BROKEN, FaultProxy, running_stac_api

# Flows run in a test process report to an ephemeral Prefect API whose database lives in
# PREFECT_HOME: one of this process's own (set before prefect is imported), so the suite never
# touches ~/.prefect and parallel test processes (pytest-xdist) never share a SQLite file.
os.environ["PREFECT_HOME"] = _PREFECT_HOME = tempfile.mkdtemp(prefix="railwatch-tests-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
START, END = dt.date(2023, 9, 1), dt.date(2023, 10, 10)  # 40 simulated scenes


@pytest.fixture(scope="session")
def aoi() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


def simulated_catalog(aoi: AOI, folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The simulator's STAC items for 40 days (metadata only, no pixels) and their collection."""
    items = []
    for plan in plan_season(aoi, START, END):
        spec = make_spec(aoi, plan, 2023, (5000.0, 4500.0), 3.0)
        doc = build_item(spec, 100 * plan.weather.cloud_cover, 100 * (1 - plan.weather.cloud_cover),
                         {k: f"/data/{spec.scene_id}/{k}.tif" for k in ("analytic", "udm2", "truth")})
        items.append(doc)
        (folder / spec.scene_id).mkdir(parents=True)
        (folder / spec.scene_id / f"{spec.scene_id}.json").write_text(json.dumps(doc))
    broken = json.loads(json.dumps(items[4]))
    broken["id"] = BROKEN
    del broken["assets"]["analytic"]
    items.append(broken)
    for doc in items:
        doc["links"] = []
    collection = build_collection(folder)
    collection["links"] = []
    return collection, items


@pytest.fixture(scope="session")
def stac_items(aoi: AOI, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return simulated_catalog(aoi, tmp_path_factory.mktemp("sim"))[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the session (tests take their own databases)."""
    if why_no_postgres():
        pytest.skip(str(why_no_postgres()))
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session", name="prefect_server")
def shared_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One `prefect server start` per test process for the CLI runs (PREFECT_API_URL): an
    ephemeral API per run costs ≈14 s to start, ≈14 s more to migrate a fresh PREFECT_HOME.
    Tests that read the API back find their own runs by id; tests/test_pipeline_e2e.py and
    tests/test_task_runner.py keep the zero-config ephemeral path."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty counts database: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'counts.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.url(server.new_database())


@pytest.fixture(scope="session")
def stac_api(aoi: AOI, stac_items: list[dict[str, Any]], pg_server: PgServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    collection, _ = simulated_catalog(aoi, tmp_path_factory.mktemp("sim-coll"))
    with running_stac_api(pg_server, collection, stac_items) as url:
        yield url


@pytest.fixture(scope="session")
def proxy(stac_api: str) -> Iterator[FaultProxy]:
    fault = FaultProxy(stac_api)
    yield fault
    fault.close()


FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def fake_aws_env() -> Iterator[None]:
    """Credentials and region for the test servers (any credentials do, unless auth is on)."""
    saved = {k: os.environ.get(k) for k in FAKE_AWS}
    os.environ.update(FAKE_AWS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_server(fake_aws_env: None) -> Iterator[MotoServer]:
    """One moto S3 server subprocess for the whole session (tests use their own buckets)."""
    server = MotoServer().start()
    yield server
    server.stop()


@dataclass
class S3:
    """A test's view of the S3 server: its config, a boto3 client and fresh buckets."""

    config: S3Config
    client: Any
    new_bucket: Callable[[str], str]


def s3_for(endpoint: str) -> S3:
    config = S3Config(endpoint_url=endpoint)
    client = config.client()

    def new_bucket(name: str) -> str:
        bucket = f"{name}-{uuid.uuid4().hex[:10]}"  # unique: no state (or GDAL cache) shared
        client.create_bucket(Bucket=bucket)
        return bucket

    return S3(config, client, new_bucket)


@pytest.fixture
def s3(moto_server: MotoServer) -> S3:
    """Direct access to the session's S3 server."""
    return s3_for(moto_server.endpoint)


@pytest.fixture
def s3_proxy(moto_server: MotoServer) -> Iterator[CountingProxy]:
    """A counting, failable proxy in front of the session's S3 server."""
    proxy = CountingProxy(moto_server.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_via_proxy(s3_proxy: CountingProxy) -> S3:
    """S3 access whose every request goes through `s3_proxy`."""
    return s3_for(s3_proxy.endpoint)
