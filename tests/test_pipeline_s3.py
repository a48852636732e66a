"""The whole pipeline with its store on S3 (moto's server on loopback): `railwatch backfill` in a
subprocess, as a user runs it, with only RAILWATCH_STORE and RAILWATCH_S3_ENDPOINT_URL set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import S3

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_backfill_with_an_s3_store(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket("railwatch")
    env = {**os.environ, "RAILWATCH_HOME": str(tmp_path), "RAILWATCH_AOI_DIR": str(REPO / "aois"),
           "RAILWATCH_STORE": f"s3://{bucket}/archive",
           "RAILWATCH_S3_ENDPOINT_URL": s3.config.endpoint_url or "",
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}

    def railwatch(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "railwatch.cli", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    railwatch("simulate", "--start", "2023-09-08", "--end", "2023-09-10")
    out = railwatch("backfill", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-10-10")

    assert "3 processed" in out and "0 failed" in out
    listed = s3.client.list_objects_v2(Bucket=bucket, Prefix="archive/tumangang/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert sum(k.endswith("/image.tif") for k in keys) == 3
    assert sum(k.endswith("/item.json") for k in keys) == 3
    collection = json.loads(s3.client.get_object(
        Bucket=bucket, Key="archive/tumangang/collection.json")["Body"].read())
    assert len([link for link in collection["links"] if link["rel"] == "item"]) == 3
