"""The whole pipeline with its counts on PostgreSQL (a real server on loopback): `railwatch
backfill` in a subprocess, as a user runs it, with only RAILWATCH_DATABASE_URL pointing there (and
PREFECT_API_URL at the test process's Prefect server).
(Reruns upserting without duplicates on PostgreSQL: tests/test_stores.py, at a fraction of the cost.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from railwatch import migrations
from railwatch.adapters.counts import CountsStore
from tests.cli_runs import PrefectServer, cli_env, run_cli
from tests.pg import PgServer

pytestmark = pytest.mark.slow


def test_backfill_stores_counts_on_postgresql(pg_server: PgServer, prefect_server: PrefectServer,
                                              tmp_path: Path) -> None:
    url = pg_server.url(pg_server.new_database())
    env = cli_env(tmp_path, RAILWATCH_DATABASE_URL=url, PREFECT_API_URL=prefect_server.api_url)

    run_cli(["simulate", "--start", "2023-09-08", "--end", "2023-09-10"], env)
    out = run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-10-10"],
                  env).stdout
    assert "3 processed" in out and "0 failed" in out
    db = CountsStore(url)
    first = [(r.scene_id, r.cars, r.detector_version) for r in db.scene_counts("tumangang")]
    assert len(first) == 3 and all(cars > 0 for _, cars, _ in first)
    assert all(db.track_counts("tumangang", scene_id) for scene_id, _, _ in first)
    assert len(db.scene_rows("tumangang")) == 3 and migrations.current(db.engine) == migrations.head()
