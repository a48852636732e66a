"""The whole pipeline with its store on S3 (moto's server on loopback): `railwatch backfill` in a
subprocess, as a user runs it, with only RAILWATCH_STORE and RAILWATCH_S3_ENDPOINT_URL set (and
PREFECT_API_URL at the test process's Prefect server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import S3

from tests.cli_runs import PrefectServer, cli_env, run_cli

pytestmark = pytest.mark.slow


def test_backfill_with_an_s3_store(s3: S3, prefect_server: PrefectServer, tmp_path: Path) -> None:
    bucket = s3.new_bucket("railwatch")
    env = cli_env(tmp_path, RAILWATCH_STORE=f"s3://{bucket}/archive",
                  RAILWATCH_S3_ENDPOINT_URL=s3.config.endpoint_url or "",
                  PREFECT_API_URL=prefect_server.api_url)

    run_cli(["simulate", "--start", "2023-09-08", "--end", "2023-09-10"], env)
    out = run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-10-10"],
                  env).stdout
    assert "3 processed" in out and "0 failed" in out
    listed = s3.client.list_objects_v2(Bucket=bucket, Prefix="archive/tumangang/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert sum(k.endswith("/image.tif") for k in keys) == 3
    assert sum(k.endswith("/item.json") for k in keys) == 3
    collection = json.loads(s3.client.get_object(
        Bucket=bucket, Key="archive/tumangang/collection.json")["Body"].read())
    assert len([link for link in collection["links"] if link["rel"] == "item"]) == 3
