"""The whole pipeline with its counts on PostgreSQL (a real server on loopback): `railwatch
backfill` in a subprocess, as a user runs it, with only RAILWATCH_DATABASE_URL pointing there.
(Reruns upserting without duplicates on PostgreSQL: tests/test_stores.py, at a fraction of the cost.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from railwatch import migrations
from railwatch.adapters.counts import CountsStore
from tests.pg import PgServer

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_backfill_stores_counts_on_postgresql(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.url(pg_server.new_database())
    env = {**os.environ, "RAILWATCH_HOME": str(tmp_path), "RAILWATCH_AOI_DIR": str(REPO / "aois"),
           "RAILWATCH_DATABASE_URL": url, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}

    def railwatch(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "railwatch.cli", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    railwatch("simulate", "--start", "2023-09-08", "--end", "2023-09-10")
    out = railwatch("backfill", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-10-10")
    assert "3 processed" in out and "0 failed" in out
    db = CountsStore(url)
    first = [(r.scene_id, r.cars, r.detector_version) for r in db.scene_counts("tumangang")]
    assert len(first) == 3 and all(cars > 0 for _, cars, _ in first)
    assert all(db.track_counts("tumangang", scene_id) for scene_id, _, _ in first)
    assert len(db.scene_rows("tumangang")) == 3 and migrations.current(db.engine) == migrations.head()
