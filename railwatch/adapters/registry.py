"""The scene registry: what each watch or backfill found per (AOI, source, scene), how far each
scene got (status, attempts, the provider's versions) and the poll marks of the watches.

Registering is idempotent on (AOI, source, scene), so rediscovery never duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from railwatch.adapters.db import Base, Database, as_utc, now
from railwatch.models import ClipRef, SceneRef


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


@dataclass
class Registration:
    """What registering a search's scenes did: new scenes, new versions, already known."""

    new: list[SceneRef] = field(default_factory=list)
    revised: list[SceneRef] = field(default_factory=list)
    known: int = 0


def _scene_row(aoi_id: str, s: SceneRef) -> dict[str, Any]:
    return {"aoi_id": aoi_id, "source": s.source, "scene_id": s.scene_id, "acquired": s.acquired,
            "published": s.published, "cloud_cover": s.cloud_cover, "status": "discovered",
            "attempts": 0, "scene_ref": json.loads(s.model_dump_json()), "updated_at": now(),
            "version": s.version, "revisions": 0}


def is_newer_version(row: SceneRow, scene: SceneRef) -> bool:
    """Another version, published later than the registered one (never an older copy)."""
    if scene.version is None or scene.version == row.version:
        return False
    if row.published is None or scene.published is None:
        return row.version is not None
    return scene.published > as_utc(row.published)


def is_due(row: SceneRow, max_attempts: int, include_done: bool = False) -> bool:
    """Whether a run processes this registered scene: not detected yet (or `include_done`), and
    not failed `max_attempts` times."""
    if include_done:
        return True
    return row.status != "detected" and (row.status != "failed" or row.attempts < max_attempts)


class SceneRegistry(Database):
    """The registry's reads and writes (CountsStore adds the counts)."""

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
        with self._session() as session:
            known = {(r.source, r.scene_id): r for r in session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.scene_id.in_([k[1] for k in by_key])))
                if (r.source, r.scene_id) in by_key}
            rows = [_scene_row(aoi_id, s) for k, s in by_key.items() if k not in known]
            if rows:  # concurrent runs: the unique key decides, the loser inserts nothing
                stmt = self._insert_new(SceneRow.__table__, ["aoi_id", "source", "scene_id"]).returning(
                    SceneRow.source, SceneRow.scene_id)
                inserted = {(r.source, r.scene_id) for r in session.execute(stmt, rows)}
                out.new = [s for k, s in by_key.items() if k in inserted]
            for key, row in known.items():
                scene = by_key[key]
                if is_newer_version(row, scene):
                    row.previous_version, row.version = row.version, scene.version
                    row.published, row.scene_ref = scene.published, json.loads(scene.model_dump_json())
                    row.status, row.attempts, row.last_error = "discovered", 0, None
                    row.revisions, row.updated_at = (row.revisions or 0) + 1, now()
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
        """Advance a scene's status (`mark_scenes` for one); a failure counts an attempt and
        keeps the reason."""
        if status != "failed":
            self.mark_scenes(status, clips=[clip] if clip else (),
                             scenes=() if clip else [(aoi_id, source, scene_id)])
            return
        with self._session() as session:
            row = session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.source == source, SceneRow.scene_id == scene_id
            )).one()
            row.status = status
            row.updated_at = now()
            row.attempts += 1
            row.last_error = error

    def mark_scenes(self, status: str, clips: Iterable[ClipRef] = (),
                    scenes: Iterable[tuple[str, str, str]] = ()) -> None:
        """Advance many scenes in one transaction: `clips` (with their keys and coverage) and
        `scenes` as (AOI id, source, scene id). A backfill marks every scene three times; one
        transaction per scene was ≈ 2 ms each on SQLite."""
        table = cast(Table, SceneRow.__table__)
        where = (table.c.aoi_id == bindparam("k_aoi"), table.c.source == bindparam("k_source"),
                 table.c.scene_id == bindparam("k_scene"))
        common: dict[str, Any] = {"status": status, "updated_at": now()}
        if status == "detected":
            common["last_error"] = None
        with_clip = [{"k_aoi": c.aoi_id, "k_source": c.scene.source, "k_scene": c.scene.scene_id,
                      "k_image": c.image_key, "k_mask": c.mask_key, "k_valid": c.valid_fraction}
                     for c in clips]
        plain = [{"k_aoi": a, "k_source": s, "k_scene": i} for a, s, i in scenes]
        with self._session() as session:
            if with_clip:
                session.execute(update(table).where(*where).values(
                    **common, image_key=bindparam("k_image"), mask_key=bindparam("k_mask"),
                    valid_fraction=bindparam("k_valid")), with_clip)
            if plain:
                session.execute(update(table).where(*where).values(**common), plain)

    def measured_clips(self, aoi_id: str) -> list[ClipRef]:
        """Clips of an AOI that have stored profiles (the history of its background model)."""
        return self._clips(aoi_id, ("measured", "detected"))

    def clipped_scenes(self, aoi_id: str) -> list[ClipRef]:
        """Every clip of an AOI in the store (what its reference is chosen from)."""
        return self._clips(aoi_id, ("clipped", "measured", "detected"))

    def _clips(self, aoi_id: str, statuses: tuple[str, ...]) -> list[ClipRef]:
        with self._session() as session:
            rows = session.scalars(select(SceneRow).where(
                SceneRow.aoi_id == aoi_id, SceneRow.status.in_(statuses)
            ).order_by(SceneRow.acquired, SceneRow.source, SceneRow.scene_id))
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
                    if is_due(r, max_attempts, include_done)]

    def poll_mark(self, aoi_id: str, source: str) -> datetime | None:
        """The newest published time a watch registered for (AOI, source), or None."""
        with self._session() as session:
            mark = session.scalar(select(PollMarkRow.published_mark).where(
                PollMarkRow.aoi_id == aoi_id, PollMarkRow.source == source))
            return as_utc(mark) if mark else None

    def advance_mark(self, aoi_id: str, source: str, published: datetime) -> None:
        """Move the (AOI, source) mark forward to `published`; never backwards."""
        with self._session() as session:
            row = session.scalar(select(PollMarkRow).where(
                PollMarkRow.aoi_id == aoi_id, PollMarkRow.source == source))
            if row is None:
                session.add(PollMarkRow(aoi_id=aoi_id, source=source, published_mark=published,
                                        updated_at=now()))
            elif as_utc(row.published_mark) < published:
                row.published_mark, row.updated_at = published, now()

    def last_acquired(self, aoi_id: str) -> datetime | None:
        """The newest acquisition time registered for an AOI (the watch flow's high-water mark)."""
        with self._session() as session:
            rows = session.scalars(select(SceneRow.acquired).where(SceneRow.aoi_id == aoi_id))
            times = [as_utc(t) for t in rows]
            return max(times) if times else None
