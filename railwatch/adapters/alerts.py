"""Alert tables beside the counts (same database, same SQLAlchemy `Base`).

- `alerts`: one row per surge episode of an (AOI, detector version), upserted on every run;
- `alert_transitions`: the outbox of what happened (opened, updated, closed), keyed by an
  idempotency key derived from the episode and scene, so a rerun inserts nothing new; each row
  carries its webhook body, frozen when first inserted, and whether its Prefect event went out;
- `webhook_outbox`: one row per (transition, URL) with its delivery status; rows whose status
  is `failed` are the retry queue, tried again on the next run until delivered; `skipped` rows
  are transitions too old to send when they were found (a backfill's history);
- `webhook_deliveries`: the append-only log of every delivery try (one row per run and URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from railwatch.adapters.counts import CountsStore
from railwatch.adapters.db import Base, as_utc

OUTBOX_DUE = ("pending", "failed")


class AlertRow(Base):
    """One surge episode; times are acquisition times, so a backfill writes what live runs wrote."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("aoi_id", "detector_version", "episode_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aoi_id: Mapped[str] = mapped_column(String(64), index=True)
    detector_version: Mapped[str] = mapped_column(String(32))
    episode_id: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16))  # open | closed | withdrawn
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    peak_scene_id: Mapped[str] = mapped_column(String(256))
    peak_cars: Mapped[int] = mapped_column(Integer)
    peak_cars_low: Mapped[int] = mapped_column(Integer)
    peak_cars_high: Mapped[int] = mapped_column(Integer)
    ratio: Mapped[float | None] = mapped_column(Float)  # peak / historical maximum
    baseline_cars: Mapped[float | None] = mapped_column(Float)
    scene_ids: Mapped[list[str]] = mapped_column(JSON)


class TransitionRow(Base):
    __tablename__ = "alert_transitions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the idempotency key
    aoi_id: Mapped[str] = mapped_column(String(64), index=True)
    detector_version: Mapped[str] = mapped_column(String(32))
    episode_id: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(16))
    scene_id: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text)  # the exact webhook body, signed as is
    event_emitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    __tablename__ = "webhook_outbox"
    __table_args__ = (UniqueConstraint("key", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|failed|delivered|skipped
    runs: Mapped[int] = mapped_column(Integer, default=0)  # runs that tried it
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery of one body to one URL ended within a run."""

    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


class AlertStore:
    """Reads and writes the alert tables through a CountsStore's engine and sessions (opening
    the CountsStore migrated them with the rest)."""

    def __init__(self, db: CountsStore) -> None:
        self.db = db

    def sync_alerts(self, aoi_id: str, detector_version: str, alerts: Sequence[dict[str, Any]]) -> None:
        """Upsert the episodes of an AOI; stored ones the series no longer shows are withdrawn
        (a reprocessed scene may change the counts an episode stood on)."""
        keys = ["aoi_id", "detector_version", "episode_id"]
        rows = [{"aoi_id": aoi_id, "detector_version": detector_version, **a} for a in alerts]
        with self.db._session() as session:
            self.db._upsert(session, AlertRow.__table__, rows, keys)
            current = {a["episode_id"] for a in alerts}
            for row in session.scalars(select(AlertRow).where(
                AlertRow.aoi_id == aoi_id, AlertRow.detector_version == detector_version
            )):
                if row.episode_id not in current:
                    row.status = "withdrawn"

    def alerts(self, aoi_id: str, detector_version: str) -> list[AlertRow]:
        with self.db._session() as session:
            rows = list(session.scalars(select(AlertRow).where(
                AlertRow.aoi_id == aoi_id, AlertRow.detector_version == detector_version
            ).order_by(AlertRow.opened_at)))
            session.expunge_all()
        for r in rows:  # SQLite hands back naive datetimes
            r.opened_at, r.updated_at = as_utc(r.opened_at), as_utc(r.updated_at)
            r.closed_at = as_utc(r.closed_at) if r.closed_at else None
        return rows

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        with self.db._session() as session:
            return set(session.scalars(select(TransitionRow.key).where(TransitionRow.key.in_(keys))))

    def add_transitions(self, rows: Sequence[dict[str, Any]], urls: Sequence[str],
                        send_since: datetime | None = None) -> None:
        """Insert new transitions and queue each for every webhook URL configured now; one
        acquired before `send_since` is recorded as skipped instead (history, not news)."""
        now = datetime.now(UTC)
        new = [r for r in rows if r["key"] not in self.known_keys([r["key"] for r in rows])]
        with self.db._session() as session:
            session.add_all(TransitionRow(**r, created_at=now) for r in new)
            session.add_all(OutboxRow(key=r["key"], url=u, runs=0, status="skipped" if (
                send_since is not None and r["at"] < send_since) else "pending")
                for r in new for u in urls)

    def unemitted(self, aoi_id: str) -> list[TransitionRow]:
        """Transitions whose Prefect event has not gone out yet, oldest first."""
        with self.db._session() as session:
            rows = list(session.scalars(select(TransitionRow).where(
                TransitionRow.aoi_id == aoi_id, TransitionRow.event_emitted_at.is_(None)
            ).order_by(TransitionRow.at, TransitionRow.created_at)))
            session.expunge_all()
            return rows

    def mark_emitted(self, keys: Sequence[str]) -> None:
        with self.db._session() as session:
            for row in session.scalars(select(TransitionRow).where(TransitionRow.key.in_(keys))):
                row.event_emitted_at = datetime.now(UTC)

    def due(self, aoi_id: str) -> list[tuple[OutboxRow, TransitionRow]]:
        """Deliveries not done yet (new ones and the retry queue), oldest transition first."""
        with self.db._session() as session:
            rows = [(o, t) for o, t in session.execute(
                select(OutboxRow, TransitionRow).join(TransitionRow, TransitionRow.key == OutboxRow.key)
                .where(TransitionRow.aoi_id == aoi_id, OutboxRow.status.in_(OUTBOX_DUE))
                .order_by(TransitionRow.at, OutboxRow.id)
            ).tuples()]
            session.expunge_all()
            return rows

    def record(self, key: str, url: str, result: DeliveryResult) -> None:
        """Log one delivery and move its outbox row to delivered, or into the retry queue."""
        now = datetime.now(UTC)
        with self.db._session() as session:
            row = session.scalars(select(OutboxRow).where(OutboxRow.key == key,
                                                          OutboxRow.url == url)).one()
            row.runs += 1
            row.status = "delivered" if result.delivered else "failed"
            row.last_error = result.error
            row.delivered_at = now if result.delivered else None
            session.add(DeliveryRow(key=key, url=url, outcome=row.status, attempts=result.attempts,
                                    status_code=result.status_code, error=result.error, at=now))

    def deliveries(self) -> list[DeliveryRow]:
        with self.db._session() as session:
            rows = list(session.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))
            session.expunge_all()
            return rows

    def outbox(self) -> list[OutboxRow]:
        with self.db._session() as session:
            rows = list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
            session.expunge_all()
            return rows
