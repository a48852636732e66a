"""The whole pipeline with its store on S3 (moto's server on loopback) and its counts on
PostgreSQL (a real server on loopback): `railwatch backfill` in a subprocess, as a user runs it,
with only RAILWATCH_STORE and RAILWATCH_S3_ENDPOINT_URL, and RAILWATCH_DATABASE_URL, set (and
PREFECT_API_URL at the test process's Prefect server). One backfill over the session's simulated
catalog serves both tests: each reads back the half it is about.
(Reruns upserting without duplicates on PostgreSQL: tests/test_stores.py, at a fraction of the cost.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import S3, s3_for

from railwatch import migrations
from railwatch.adapters.counts import CountsStore
from tests.cli_runs import SIM_START, PrefectServer, cli_env, home_with, run_cli, simulated
from tests.pg import PgServer
from tests.servers import MotoServer

# slow; and its module fixture is costly: both tests on one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_pipeline_stores")]
__all__ = ["simulated"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def backfilled(moto_server: MotoServer, pg_server: PgServer, prefect_server: PrefectServer, simulated: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[S3, str, str, str]:
    """(the S3 server, the bucket, the counts database URL, the CLI's output) after a backfill of
    three of the simulated days."""
    s3 = s3_for(moto_server.endpoint)
    bucket = s3.new_bucket("railwatch")
    url = pg_server.url(pg_server.new_database())
    env = cli_env(home_with(simulated, tmp_path_factory.mktemp("stores")),
                  RAILWATCH_STORE=f"s3://{bucket}/archive", RAILWATCH_DATABASE_URL=url,
                  RAILWATCH_S3_ENDPOINT_URL=s3.config.endpoint_url or "",
                  PREFECT_API_URL=prefect_server.api_url)
    out = run_cli(["backfill", "--aoi", "tumangang", "--start", SIM_START, "--end", "2023-09-10"], env).stdout
    return s3, bucket, url, out


def test_backfill_with_an_s3_store(backfilled: tuple[S3, str, str, str]) -> None:
    s3, bucket, _, out = backfilled
    assert "3 processed" in out and "0 failed" in out
    listed = s3.client.list_objects_v2(Bucket=bucket, Prefix="archive/tumangang/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert sum(k.endswith("/image.tif") for k in keys) == 3
    assert sum(k.endswith("/item.json") for k in keys) == 3
    collection = json.loads(s3.client.get_object(
        Bucket=bucket, Key="archive/tumangang/collection.json")["Body"].read())
    assert len([link for link in collection["links"] if link["rel"] == "item"]) == 3


def test_backfill_stores_counts_on_postgresql(backfilled: tuple[S3, str, str, str]) -> None:
    _, _, url, out = backfilled
    assert "3 processed" in out and "0 failed" in out
    db = CountsStore(url)
    first = [(r.scene_id, r.cars, r.detector_version) for r in db.scene_counts("tumangang")]
    assert len(first) == 3 and all(cars > 0 for _, cars, _ in first)
    assert all(db.track_counts("tumangang", scene_id) for scene_id, _, _ in first)
    assert len(db.scene_rows("tumangang")) == 3 and migrations.current(db.engine) == migrations.head()
