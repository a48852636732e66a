"""No secret leaks: a whole backfill with every secret in play — AWS keys for an S3 store that
refuses any other key, a database password, a webhook secret, a Planet key — and then every
place a secret could end up is searched for them: the CLI's output (with Prefect's logs), the
Prefect database (flow run parameters, logs, artifacts, events), the counts database, every
object in the store, the webhook requests, and the errors of runs that fail on bad credentials.

The CLI reports to a Prefect server of this test's own (not the test process's shared one): the
server is stopped before its database is searched, so that it holds everything the runs sent
(its services write events and task runs in batches), and nothing of other tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import S3
from sqlalchemy import create_engine, inspect, text

from tests.cli_runs import cli_env, prefect_server, run_cli
from tests.pg import PgServer
from tests.receivers import serving
from tests.servers import CountingProxy

pytestmark = pytest.mark.slow

AWS_KEY_ID, AWS_SECRET = "AKIARAILWATCHSECRET1", "aws-secret-Zq8vY2uN4kX0"
DB_PASSWORD, WEBHOOK_SECRET, PLANET_KEY = "db-pass-H7c2Lw9e", "hook-secret-T3m6Qa1r", "PLAK-secret-9f3e1d"
SECRETS = (AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, WEBHOOK_SECRET, PLANET_KEY)


def leaks(where: str, data: bytes | str) -> list[str]:
    blob = data.encode() if isinstance(data, str) else data
    return [f"{where}: {secret[:6]}…" for secret in SECRETS if secret.encode() in blob]


def database_text(url: str) -> str:
    """Every row of every table, as text."""
    engine = create_engine(url)
    with engine.connect() as con:
        return "\n".join(str(row) for table in inspect(engine).get_table_names()
                         for row in con.execute(text(f'SELECT * FROM "{table}"')))


def test_no_secret_in_logs_parameters_artifacts_errors_or_databases(
        s3: S3, s3_proxy: CountingProxy, pg_server: PgServer, tmp_path: Path) -> None:
    bucket = s3.new_bucket("secrets")
    database = pg_server.new_database()
    db_url = pg_server.url(database).replace("postgres@", f"postgres:{DB_PASSWORD}@")
    with prefect_server(tmp_path / "prefect-server") as prefect, serving(WEBHOOK_SECRET) as receiver:
        env = cli_env(tmp_path, PREFECT_API_URL=prefect.api_url, RAILWATCH_STORE=f"s3://{bucket}/archive",
                      RAILWATCH_S3_ENDPOINT_URL=s3_proxy.endpoint, RAILWATCH_DATABASE_URL=db_url,
                      RAILWATCH_WEBHOOK_URLS=f'["http://127.0.0.1:{receiver.server_port}/hook"]',
                      RAILWATCH_WEBHOOK_SECRET=WEBHOOK_SECRET, RAILWATCH_WEBHOOK_MAX_AGE_DAYS="0",
                      AWS_ACCESS_KEY_ID=AWS_KEY_ID, AWS_SECRET_ACCESS_KEY=AWS_SECRET, PL_API_KEY=PLANET_KEY)
        s3_proxy.access_key = AWS_KEY_ID  # the store accepts only the secret key pair's id
        run_cli(["simulate", "--start", "2023-09-20", "--end", "2023-09-23", "--scene-km", "4", "3.6"], env)
        done = run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-20", "--end", "2023-09-23",
                        "--verbose"], env)
        assert "4 processed" in done.stdout, done.stdout
        assert receiver.handled_bodies, "no alert reached the receiver: the webhook path was not exercised"
        assert s3_proxy.traffic.count("PUT") > 0

        # runs that fail on credentials: the errors name the problem, not the secret
        wrong_db = run_cli(["backfill", "--start", "2023-09-20", "--end", "2023-09-23"],
                           env | {"RAILWATCH_DATABASE_URL": db_url.replace(f":{pg_server.port}/", ":9/")},
                           expect=2)
        wrong_key = run_cli(["backfill", "--start", "2023-09-20", "--end", "2023-09-23"],
                            env | {"AWS_ACCESS_KEY_ID": "AKIAOTHERKEY00000000"}, expect=2)
        planet = run_cli(["search", "--aoi", "tumangang", "--start", "2023-09-20", "--end", "2023-09-23",
                          "--source", "planet?base_url=http://127.0.0.1:9"],
                         env | {"RAILWATCH_CATALOGS": '["planet?base_url=http://127.0.0.1:9"]'}, expect=2)

    found = [*leaks("backfill output", done.stdout + done.stderr)]
    for name, proc in (("bad database URL", wrong_db), ("bad AWS key", wrong_key), ("planet", planet)):
        found += leaks(f"{name} error", proc.stdout + proc.stderr)
    assert "counts database" in wrong_db.stdout + wrong_db.stderr
    assert "access denied" in wrong_key.stdout + wrong_key.stderr
    # Prefect's files: the server's database (parameters, logs, artifacts, events) and log, the
    # CLI's Prefect home
    prefect_files = [p for folder in ("prefect-server", "prefect") for p in (tmp_path / folder).rglob("*")
                     if p.is_file()]
    for path in prefect_files:
        found += leaks(f"Prefect file {path.name}", path.read_bytes())
    written = b"".join(path.read_bytes() for path in prefect_files)
    # the flow and the run's last event are there: the search covered what the run left
    assert b"railwatch-backfill" in written and b"prefect.flow-run.Completed" in written
    found += leaks("counts database", database_text(pg_server.url(database)))
    for obj in s3.client.list_objects_v2(Bucket=bucket).get("Contents", []):
        found += leaks(f"store object {obj['Key']}",
                       s3.client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    found += leaks("webhook requests", str(receiver.handled_bodies))
    assert not found, found
