"""The counts store (SQLite by default, PostgreSQL in production) through SQLAlchemy.

Three tables: the scene registry (what was found and how far it got), one row per
(AOI, scene, track, detector version), and one row per (AOI, scene, detector version) with
totals and the surge flag. Writes are upserts on those keys, so reruns never duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from railwatch.errors import ConfigError, StorageError
from railwatch.models import ClipRef, SceneCount, SceneRef


class Base(DeclarativeBase):
    pass


class SceneRow(Base):
    """The scene registry: one row per (AOI, source, scene)."""

    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("aoi_id", "source", "scene_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aoi_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(128))
    scene_id: Mapped[str] = mapped_column(String(256))
    acquired: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    published: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cloud_cover: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="discovered")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    scene_ref: Mapped[dict[str, Any]] = mapped_column(JSON)
    image_key: Mapped[str | None] = mapped_column(String(512))
    mask_key: Mapped[str | None] = mapped_column(String(512))
    valid_fraction: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[str | None] = mapped_column(String(128))  # the provider's, see SceneRef.version
    previous_version: Mapped[str | None] = mapped_column(String(128))
    revisions: Mapped[int | None] = mapped_column(Integer)  # deliberate reprocessings of new versions


class PollMarkRow(Base):
    """Per (AOI, source): the newest published/updated time a watch has registered."""

    __tablename__ = "poll_marks"
    __table_args__ = (UniqueConstraint("aoi_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aoi_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))
    published_mark: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrackCountRow(Base):
    __tablename__ = "track_counts"
    __table_args__ = (UniqueConstraint("aoi_id", "source", "scene_id", "track_id", "detector_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aoi_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(128))
    scene_id: Mapped[str] = mapped_column(String(256))
    track_id: Mapped[str] = mapped_column(String(128))
    detector_version: Mapped[str] = mapped_column(String(32))
    acquired: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    length_m: Mapped[float] = mapped_column(Float)
    occupied_m: Mapped[float] = mapped_column(Float)
    cars: Mapped[int] = mapped_column(Integer)
    cars_low: Mapped[int] = mapped_column(Integer)
    cars_high: Mapped[int] = mapped_column(Integer)
    valid_fraction: Mapped[float] = mapped_column(Float)
    segments: Mapped[list[list[float]] | None] = mapped_column(JSON)  # occupied (start_m, end_m)


class SceneCountRow(Base):
    __tablename__ = "scene_counts"
    __table_args__ = (UniqueConstraint("aoi_id", "source", "scene_id", "detector_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aoi_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(128))
    scene_id: Mapped[str] = mapped_column(String(256))
    detector_version: Mapped[str] = mapped_column(String(32))
    acquired: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    occupied_m: Mapped[float] = mapped_column(Float)
    cars: Mapped[int] = mapped_column(Integer)
    cars_low: Mapped[int] = mapped_column(Integer)
    cars_high: Mapped[int] = mapped_column(Integer)
    valid_fraction: Mapped[float] = mapped_column(Float)
    shift_dx_m: Mapped[float] = mapped_column(Float)
    shift_dy_m: Mapped[float] = mapped_column(Float)
    flags: Mapped[str] = mapped_column(Text, default="")
    image_key: Mapped[str] = mapped_column(String(512))
    mask_key: Mapped[str] = mapped_column(String(512))
    background_scenes: Mapped[int | None] = mapped_column(Integer)
    background_id: Mapped[str | None] = mapped_column(String(16))
    surge: Mapped[bool] = mapped_column(Boolean, default=False)
    surge_ratio: Mapped[float | None] = mapped_column(Float)
    baseline_cars: Mapped[float | None] = mapped_column(Float)


@dataclass
class Registration:
    """What registering a search's scenes did: new scenes, new versions, already known."""

    new: list[SceneRef] = field(default_factory=list)
    revised: list[SceneRef] = field(default_factory=list)
    known: int = 0


def _scene_row(aoi_id: str, s: SceneRef) -> dict[str, Any]:
    return {"aoi_id": aoi_id, "source": s.source, "scene_id": s.scene_id, "acquired": s.acquired,
            "published": s.published, "cloud_cover": s.cloud_cover, "status": "discovered",
            "attempts": 0, "scene_ref": json.loads(s.model_dump_json()), "updated_at": _now(),
            "version": s.version, "revisions": 0}


def is_newer_version(row: SceneRow, scene: SceneRef) -> bool:
    """Another version, published later than the registered one (never an older copy)."""
    if scene.version is None or scene.version == row.version:
        return False
    if row.published is None or scene.published is None:
        return row.version is not None
    return scene.published > _as_utc(row.published)


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything railwatch stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class CountsStore:
    """Reads and upserts railwatch's tables."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        try:
            self.engine = engine or create_engine(url, future=True)
        except (ArgumentError, ImportError, ValueError) as exc:
            raise ConfigError(f"database URL {url!r} is not usable: {exc}") from exc
        try:
            Base.metadata.create_all(self.engine)
            self._add_missing_columns()
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot open the counts database {url!r}: {exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0]}") from exc

    def _add_missing_columns(self) -> None:
        """Add columns newer than an existing database (all nullable), so it keeps working."""
        inspector = inspect(self.engine)
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as con:
                        con.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))

    def _upsert(self, session: Session, table: Any, rows: Sequence[dict[str, Any]],
                keys: Sequence[str]) -> None:
        if not rows:
            return
        dialect = self.engine.dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
        if insert is None:
            raise ConfigError(f"database dialect {dialect!r} is not supported; use SQLite or PostgreSQL")
        stmt: Any = insert(table)
        update = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update), rows)

    # --- scene registry -------------------------------------------------------------------

    def register_scenes(self, aoi_id: str, scenes: Iterable[SceneRef]) -> Registration:
        """Record discovered scenes, exactly once per (AOI, source, scene).

        A known scene keeps its status and history, unless the provider published a new version
        of it (another `version`, published later): then it goes back to 'discovered' and the
        revision is counted and the previous version kept, so reprocessing is deliberate.
        """
        by_key = {(s.source, s.scene_id): s for s in scenes}  # a scene listed twice counts once
        out = Registration()
        if not by_key:
            return out
        dialect = self.engine.dialect.name
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        with self._session() as session:
            known = {(r.source, r.scene_id): r for r in session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.scene_id.in_([k[1] for k in by_key])))
                if (r.source, r.scene_id) in by_key}
            rows = [_scene_row(aoi_id, s) for k, s in by_key.items() if k not in known]
            if rows:  # concurrent runs: the unique key decides, the loser inserts nothing
                stmt = insert(SceneRow.__table__).on_conflict_do_nothing(  # type: ignore[arg-type]
                    index_elements=["aoi_id", "source", "scene_id"]
                ).returning(SceneRow.source, SceneRow.scene_id)
                inserted = {(r.source, r.scene_id) for r in session.execute(stmt, rows)}
                out.new = [s for k, s in by_key.items() if k in inserted]
            for key, row in known.items():
                scene = by_key[key]
                if is_newer_version(row, scene):
                    row.previous_version, row.version = row.version, scene.version
                    row.published, row.scene_ref = scene.published, json.loads(scene.model_dump_json())
                    row.status, row.attempts, row.last_error = "discovered", 0, None
                    row.revisions, row.updated_at = (row.revisions or 0) + 1, _now()
                    out.revised.append(scene)
                else:
                    out.known += 1
        return out

    def scene_rows(self, aoi_id: str) -> list[SceneRow]:
        """The registry rows of an AOI (status, attempts, versions), for reports and tests."""
        with self._session() as session:
            rows = list(session.scalars(select(SceneRow).where(SceneRow.aoi_id == aoi_id)))
            session.expunge_all()
            return rows

    def scene_status(self, aoi_id: str) -> dict[tuple[str, str], str]:
        with self._session() as session:
            rows = session.execute(
                select(SceneRow.source, SceneRow.scene_id, SceneRow.status).where(
                    SceneRow.aoi_id == aoi_id
                )
            )
            return {(r.source, r.scene_id): r.status for r in rows}

    def mark_scene(self, aoi_id: str, source: str, scene_id: str, status: str,
                   error: str | None = None, clip: ClipRef | None = None) -> None:
        """Advance a scene's status; a failure counts an attempt and keeps the reason."""
        with self._session() as session:
            row = session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.source == source, SceneRow.scene_id == scene_id
            )).one()
            row.status = status
            row.updated_at = _now()
            if status == "failed":
                row.attempts += 1
                row.last_error = error
            if clip is not None:
                row.image_key, row.mask_key = clip.image_key, clip.mask_key
                row.valid_fraction = clip.valid_fraction
            if status == "detected":
                row.last_error = None

    def measured_clips(self, aoi_id: str) -> list[ClipRef]:
        """Clips of an AOI that have stored profiles (the history of its background model)."""
        with self._session() as session:
            rows = session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.status.in_(("measured", "detected"))
            ))
            return [
                ClipRef(aoi_id=aoi_id, scene=SceneRef.model_validate(r.scene_ref),
                        image_key=r.image_key or "", mask_key=r.mask_key or "",
                        valid_fraction=r.valid_fraction or 0.0)
                for r in rows
            ]

    def pending_scenes(self, aoi_id: str, start: datetime | None = None, end: datetime | None = None,
                       max_attempts: int = 3, include_done: bool = False) -> list[SceneRef]:
        """Registered scenes not detected yet (failures until `max_attempts`), oldest first."""
        query = select(SceneRow).where(SceneRow.aoi_id == aoi_id)
        if not include_done:
            query = query.where(SceneRow.status != "detected")
        if start is not None:
            query = query.where(SceneRow.acquired >= start)
        if end is not None:
            query = query.where(SceneRow.acquired < end)
        with self._session() as session:
            rows = session.scalars(query.order_by(SceneRow.acquired, SceneRow.scene_id))
            return [SceneRef.model_validate(r.scene_ref) for r in rows
                    if include_done or r.status != "failed" or r.attempts < max_attempts]

    def poll_mark(self, aoi_id: str, source: str) -> datetime | None:
        """The newest published time a watch registered for (AOI, source), or None."""
        with self._session() as session:
            mark = session.scalar(select(PollMarkRow.published_mark).where(
                PollMarkRow.aoi_id == aoi_id, PollMarkRow.source == source))
            return _as_utc(mark) if mark else None

    def advance_mark(self, aoi_id: str, source: str, published: datetime) -> None:
        """Move the (AOI, source) mark forward to `published`; never backwards."""
        with self._session() as session:
            row = session.scalar(select(PollMarkRow).where(
                PollMarkRow.aoi_id == aoi_id, PollMarkRow.source == source))
            if row is None:
                session.add(PollMarkRow(aoi_id=aoi_id, source=source, published_mark=published,
                                        updated_at=_now()))
            elif _as_utc(row.published_mark) < published:
                row.published_mark, row.updated_at = published, _now()

    def last_acquired(self, aoi_id: str) -> datetime | None:
        """The newest acquisition time registered for an AOI (the watch flow's high-water mark)."""
        with self._session() as session:
            rows = session.scalars(select(SceneRow.acquired).where(SceneRow.aoi_id == aoi_id))
            times = [_as_utc(t) for t in rows]
            return max(times) if times else None

    # --- counts ---------------------------------------------------------------------------

    def upsert_counts(self, counts: Sequence[SceneCount]) -> None:
        scene_rows: list[dict[str, Any]] = []
        track_rows: list[dict[str, Any]] = []
        for c in counts:
            key = {"aoi_id": c.aoi_id, "source": c.source, "scene_id": c.scene_id,
                   "detector_version": c.detector_version}
            scene_rows.append({
                **key, "acquired": c.acquired, "occupied_m": c.occupied_m, "cars": c.cars,
                "cars_low": c.cars_low, "cars_high": c.cars_high,
                "valid_fraction": c.valid_fraction, "shift_dx_m": c.shift_m[0],
                "shift_dy_m": c.shift_m[1], "flags": ",".join(c.flags),
                "image_key": c.image_key, "mask_key": c.mask_key,
                "background_scenes": c.background_scenes, "background_id": c.background_id,
            })
            track_rows.extend({**key, **t.model_dump(), "acquired": c.acquired} for t in c.tracks)
        with self._session() as session:
            self._upsert(session, SceneCountRow.__table__, scene_rows,
                         ["aoi_id", "source", "scene_id", "detector_version"])
            self._upsert(session, TrackCountRow.__table__, track_rows,
                         ["aoi_id", "source", "scene_id", "track_id", "detector_version"])

    def scene_counts(self, aoi_id: str, detector_version: str | None = None) -> list[SceneCountRow]:
        """All scene totals of an AOI, oldest first."""
        with self._session() as session:
            query = select(SceneCountRow).where(SceneCountRow.aoi_id == aoi_id)
            if detector_version:
                query = query.where(SceneCountRow.detector_version == detector_version)
            rows = list(session.scalars(query.order_by(SceneCountRow.acquired, SceneCountRow.scene_id)))
            for r in rows:
                r.acquired = _as_utc(r.acquired)
            session.expunge_all()
            return rows

    def track_counts(self, aoi_id: str, scene_id: str) -> list[TrackCountRow]:
        with self._session() as session:
            rows = list(session.scalars(select(TrackCountRow).where(
                TrackCountRow.aoi_id == aoi_id, TrackCountRow.scene_id == scene_id
            ).order_by(TrackCountRow.track_id)))
            session.expunge_all()
            return rows

    def set_surge_flags(self, aoi_id: str, detector_version: str,
                        flags: dict[str, tuple[bool, float | None, float | None]]) -> None:
        """Write (surge, ratio, baseline) per scene id."""
        with self._session() as session:
            for row in session.scalars(select(SceneCountRow).where(
                SceneCountRow.aoi_id == aoi_id, SceneCountRow.detector_version == detector_version
            )):
                if row.scene_id in flags:
                    row.surge, row.surge_ratio, row.baseline_cars = flags[row.scene_id]

    def _session(self) -> _SessionScope:
        return _SessionScope(self.engine)


class _SessionScope:
    """A session that commits on success, rolls back on error and turns DB errors into ours."""

    def __init__(self, engine: Engine) -> None:
        self.session = Session(engine, expire_on_commit=False)

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        except SQLAlchemyError as err:
            raise StorageError(f"counts database write failed: {err}") from err
        finally:
            self.session.close()
