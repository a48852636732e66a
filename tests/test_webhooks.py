"""Webhooks against a real receiver on loopback (examples/webhook_receiver.py) that fails
sometimes: signatures, idempotency keys, in-run retries, and the retry queue on the next run;
the alert store on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import CountsStore
from railwatch.adapters.store import LocalStore
from railwatch.errors import ConfigError
from railwatch.publish import update_alerts
from railwatch.quicklook import clip_grid
from railwatch.webhooks import check_config, deliver_due, redact, sign
from tests.alert_series import QUIET, START, VERSION, demo_aoi, store_series
from tests.receivers import receiver_example, serving

SECRET = SecretStr("not-a-real-secret-0123")
class FlakyHandler(receiver_example.RequestHandler):  # type: ignore[misc, name-defined]
    """Follows the server's plan, one step per request: "500", "hang" (outlives the client's
    timeout), anything else answers as the example receiver does."""

    def do_POST(self) -> None:
        server: Any = self.server
        with server.lock:
            step = server.plan.pop(0) if server.plan else "ok"
            server.requests.append((self.headers["Idempotency-Key"], step))
        if step == "500":
            self.rfile.read(int(self.headers["Content-Length"]))
            return self.answer(500, {"error": "try later"})
        if step == "hang":
            server.released.wait(timeout=30)  # the client gives up long before
            return None
        return super().do_POST()


@pytest.fixture
def receiver() -> Iterator[Any]:
    with serving(SECRET.get_secret_value(), handler=FlakyHandler) as server:
        server.plan, server.requests = [], []
        yield server


def deliver(alerts: AlertStore, aoi_id: str) -> list[Any]:
    return deliver_due(alerts, aoi_id, SECRET, timeout_s=0.5, attempts=3, backoff_s=0.01)


def test_surge_is_delivered_signed_once_and_failures_retried_next_run(
        tmp_path: Path, db_url: str, receiver: Any, caplog: pytest.LogCaptureFixture) -> None:
    aoi = demo_aoi()
    db = CountsStore(db_url)
    alerts, store = AlertStore(db), LocalStore(tmp_path / "store")
    url = f"http://127.0.0.1:{receiver.server_port}/hooks/railwatch-token-in-path"
    grid = clip_grid(aoi, 60.0)
    store_series(db, aoi, [*QUIET, 35, 45, 40])  # opened on day 10, updated on day 11

    def run() -> list[Any]:
        update_alerts(aoi, grid, db, alerts, store, VERSION, [url])
        return deliver(alerts, aoi.id)

    # run 1: the opening is delivered on its third attempt (500, then a timeout); the update
    # fails three times and goes to the retry queue
    receiver.plan = ["500", "hang", "ok", "500", "500", "500"]
    first = run()
    assert [(r.delivered, r.attempts) for r in first] == [(True, 3), (False, 3)]
    assert [b["event"] for b in receiver.handled_bodies] == ["railwatch.surge.opened"]
    assert [o.status for o in alerts.outbox()] == ["delivered", "failed"]
    # run 2: no new transition, the failed delivery is sent again and lands exactly once
    second = run()
    assert [(r.delivered, r.attempts) for r in second] == [(True, 1)]
    assert [b["event"] for b in receiver.handled_bodies] == ["railwatch.surge.opened",
                                                             "railwatch.surge.updated"]
    # run 3: nothing is due, nothing is sent
    requests = len(receiver.requests)
    assert run() == [] and len(receiver.requests) == requests
    assert [(d.outcome, d.attempts) for d in alerts.deliveries()] == [
        ("delivered", 3), ("failed", 3), ("delivered", 1)]
    keys = [b["idempotency_key"] for b in receiver.handled_bodies]
    assert len(set(keys)) == 2 and {k for k, _ in receiver.requests} == set(keys)

    opened = receiver.handled_bodies[0]
    assert opened["aoi"]["id"] == "tumangang" and opened["date"] == "2023-09-11"
    assert opened["scene"]["cars"] == 35 and opened["scene"]["cars_low"] == 32
    assert opened["scene"]["ratio"] == pytest.approx(35 / 20)
    assert opened["scene"]["baseline_cars"] == pytest.approx(11.5)
    assert opened["scene"]["links"]["clip"].startswith("file://")
    assert opened["episode"]["scene_ids"] == ["s10"]
    assert "35 cars on 2023-09-11, 1.8× the historical maximum" in opened["summary"]

    # the surge grows in a later run: one more update, delivered on its own
    store_series(db, aoi, [60], first_day=13)
    (grown,) = run()
    assert grown.delivered and receiver.handled_bodies[-1]["scene"]["cars"] == 60
    assert receiver.handled_bodies[-1]["episode"]["scene_ids"] == ["s10", "s11", "s12", "s13"]
    (alert,) = alerts.alerts(aoi.id, VERSION)
    assert (alert.status, alert.peak_cars, alert.scene_ids) == ("open", 60, ["s10", "s11", "s12", "s13"])
    # neither the secret nor the URL's path reaches the logs
    assert SECRET.get_secret_value() not in caplog.text and "token-in-path" not in caplog.text


def test_receiver_rejects_bad_signatures_and_answers_repeats_without_handling(
        tmp_path: Path, receiver: Any) -> None:
    body = json.dumps({"event": "railwatch.surge.opened", "summary": "x"}).encode()
    url = f"http://127.0.0.1:{receiver.server_port}/"
    headers = {"Idempotency-Key": "k1", "X-Railwatch-Signature": sign(SECRET, body)}
    forged = {**headers, "X-Railwatch-Signature": sign(SecretStr("other"), body)}
    assert httpx.post(url, content=body, headers=forged).status_code == 401
    assert httpx.post(url, content=body, headers=headers).json() == {"ok": True}
    assert httpx.post(url, content=body, headers=headers).json() == {"duplicate": True}
    assert len(receiver.handled_bodies) == 1


def test_rerun_adds_no_alerts_transitions_or_deliveries(tmp_path: Path, db_url: str) -> None:
    aoi = demo_aoi()
    db = CountsStore(db_url)
    alerts, store = AlertStore(db), LocalStore(tmp_path / "store")
    store_series(db, aoi, [*QUIET, 35, 45, 40, 11, 12, 10])
    grid = clip_grid(aoi, 60.0)
    first = update_alerts(aoi, grid, db, alerts, store, VERSION, ["http://127.0.0.1:9/"])
    assert [t["kind"] for t in first.new] == ["opened", "updated", "closed"]
    again = update_alerts(aoi, grid, db, alerts, store, VERSION, ["http://127.0.0.1:9/"])
    assert again.new == [] and len(alerts.outbox()) == 3
    assert [(a.status, a.peak_cars) for a in alerts.alerts(aoi.id, VERSION)] == [("closed", 45)]


def test_transitions_older_than_the_max_age_are_recorded_not_sent(
        tmp_path: Path, db_url: str, receiver: Any) -> None:
    aoi = demo_aoi()
    db = CountsStore(db_url)
    alerts, store = AlertStore(db), LocalStore(tmp_path / "store")
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    store_series(db, aoi, [*QUIET, 35, 45, 40, 11, 12, 10])  # opened day 10, updated 11, closed 15
    since = START + timedelta(days=12)  # as if a backfill ran on day 19 with a 7-day max age
    update = update_alerts(aoi, clip_grid(aoi, 60.0), db, alerts, store, VERSION, [url], since)
    assert [t["kind"] for t in update.new] == ["opened", "updated", "closed"]
    assert [o.status for o in alerts.outbox()] == ["skipped", "skipped", "pending"]
    (sent,) = deliver(alerts, aoi.id)
    assert sent.delivered and [b["event"] for b in receiver.handled_bodies] == ["railwatch.surge.closed"]
    assert deliver(alerts, aoi.id) == []  # skipped ones never become due
    assert len(alerts.unemitted(aoi.id)) == 3  # Prefect events are not webhooks: all still go out


def test_webhook_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="RAILWATCH_WEBHOOK_SECRET is not set"):
        check_config(["https://example.org/hook"], None)
    with pytest.raises(ConfigError, match="is not an http"):
        check_config(["ftp://example.org/x"], SECRET)
    check_config([], None)
    assert redact("https://hooks.example.org:8443/services/T0/B0/XYZ") == "https://hooks.example.org:8443/…"
