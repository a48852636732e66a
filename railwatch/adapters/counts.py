"""The counts store: one row per (AOI, scene, track, detector version) and one row per
(AOI, scene, detector version) with totals and the surge flag, beside the scene registry.

Writes are upserts on those keys, so reruns and backfills never duplicate, and a new detector
version adds its own rows instead of overwriting the old ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from railwatch.adapters.db import Base, as_utc
from railwatch.adapters.registry import Registration, SceneRegistry, SceneRow
from railwatch.models import SceneCount

__all__ = ["Base", "CountsStore", "Registration", "SceneCountRow", "SceneRow", "TrackCountRow"]


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
    surge: Mapped[bool | None] = mapped_column(Boolean)  # the track against its own history
    surge_ratio: Mapped[float | None] = mapped_column(Float)
    baseline_cars: Mapped[float | None] = mapped_column(Float)


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


class TrackPoint(NamedTuple):
    """What the per-track surge test reads of a track row."""

    scene_id: str
    track_id: str
    acquired: datetime
    cars: int
    valid_fraction: float
    cars_low: int  # the low end of the count's ≈90 % interval


class CountsStore(SceneRegistry):
    """Reads and upserts railwatch's tables (the schema is migrated to head on open)."""

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
                r.acquired = as_utc(r.acquired)
            session.expunge_all()
            return rows

    def detector_versions(self, aoi_id: str) -> list[tuple[str, int, datetime, datetime]]:
        """Per detector version with counts of the AOI: (version, scenes, first and last
        acquisition), the most scenes first."""
        with self._session() as session:
            rows = session.execute(
                select(SceneCountRow.detector_version, func.count(), func.min(SceneCountRow.acquired),
                       func.max(SceneCountRow.acquired))
                .where(SceneCountRow.aoi_id == aoi_id).group_by(SceneCountRow.detector_version)
            ).all()
        out = [(str(v), int(n), as_utc(a), as_utc(b)) for v, n, a, b in rows]
        return sorted(out, key=lambda r: (-r[1], r[0]))

    def track_counts(self, aoi_id: str, scene_id: str | None = None,
                     detector_version: str | None = None) -> list[TrackCountRow]:
        """Track rows of a scene (or of the whole AOI, oldest first), of one detector version or all."""
        query = select(TrackCountRow).where(TrackCountRow.aoi_id == aoi_id)
        if scene_id is not None:
            query = query.where(TrackCountRow.scene_id == scene_id)
        if detector_version:
            query = query.where(TrackCountRow.detector_version == detector_version)
        with self._session() as session:
            rows = list(session.scalars(query.order_by(
                TrackCountRow.acquired, TrackCountRow.scene_id, TrackCountRow.track_id)))
            for r in rows:
                r.acquired = as_utc(r.acquired)
            session.expunge_all()
            return rows

    def track_points(self, aoi_id: str, detector_version: str) -> list[TrackPoint]:
        """An AOI's track rows of one detector version as the surge test reads them, oldest
        first: six columns, not ORM objects (a year's 2,555 rows as objects took 80 ms, and
        every store flags the whole series again)."""
        table = TrackCountRow.__table__
        with self._session() as session:
            rows = session.execute(
                select(table.c.scene_id, table.c.track_id, table.c.acquired, table.c.cars,
                       table.c.valid_fraction, table.c.cars_low)
                .where(table.c.aoi_id == aoi_id, table.c.detector_version == detector_version)
                .order_by(table.c.acquired, table.c.scene_id, table.c.track_id)).all()
        return [TrackPoint(s, t, as_utc(a), c, v, low) for s, t, a, c, v, low in rows]

    def set_surge_flags(self, aoi_id: str, detector_version: str,
                        flags: dict[str, tuple[bool, float | None, float | None]]) -> None:
        """Write (surge, ratio, baseline) per scene id."""
        self._set_flags(SceneCountRow, aoi_id, detector_version, flags, ("scene_id",))

    def set_track_surge_flags(self, aoi_id: str, detector_version: str,
                              flags: dict[tuple[str, str], tuple[bool, float | None, float | None]]) -> None:
        """Write (surge, ratio, baseline) per (scene id, track id)."""
        self._set_flags(TrackCountRow, aoi_id, detector_version, flags, ("scene_id", "track_id"))

    def _set_flags(self, model: Any, aoi_id: str, detector_version: str, flags: dict[Any, Any],
                   key: tuple[str, ...]) -> None:
        """Update the rows whose flags changed, only those: the whole series is flagged again on
        every store, and most of it stays as it was."""
        table = model.__table__
        flag_columns = (table.c.surge, table.c.surge_ratio, table.c.baseline_cars)
        with self._session() as session:
            rows = session.execute(select(table.c.id, *(table.c[k] for k in key), *flag_columns).where(
                table.c.aoi_id == aoi_id, table.c.detector_version == detector_version)).all()
            changed = []
            for row in rows:
                new = flags.get(row[1] if len(key) == 1 else tuple(row[1 : 1 + len(key)]))
                if new is not None and tuple(row[-3:]) != tuple(new):
                    changed.append({"row_id": row[0], "new_surge": new[0], "new_ratio": new[1],
                                    "new_baseline": new[2]})
            if changed:
                session.execute(update(table).where(table.c.id == bindparam("row_id")).values(
                    surge=bindparam("new_surge"), surge_ratio=bindparam("new_ratio"),
                    baseline_cars=bindparam("new_baseline")), changed)
