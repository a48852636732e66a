"""Baseline: railwatch's tables as they stood when migrations began, adopting older databases.

A database written before migrations existed (no version table) gets what it lacks: missing
tables are created, missing nullable columns added, existing rows kept. A new one is created.

Revision ID: 0001
Revises:
Create Date: 2025-01-20
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from railwatch.errors import ConfigError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def col(name: str, kind: Any,
        null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=null)


def row_id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer, primary_key=True)


def ensure_table(name: str, *columns: sa.Column[Any], unique: tuple[str, ...] = (),
                 indexes: tuple[str, ...] = ()) -> None:
    """Create the table, or add the columns an older railwatch's table lacks (nullable only:
    rows already there have no value for them)."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(name):
        op.create_table(name, *columns, *([sa.UniqueConstraint(*unique)] if unique else []))
        for indexed in indexes:
            op.create_index(f"ix_{name}_{indexed}", name, [indexed])
        return
    have = {c["name"] for c in inspector.get_columns(name)}
    for column in columns:
        if column.name in have:
            continue
        if not column.nullable:
            raise ConfigError(f"table {name} lacks the required column {column.name}; "
                              "this database is not one railwatch wrote")
        op.add_column(name, column)


def scene_key() -> tuple[sa.Column[Any], ...]:
    """The (AOI, source, scene) columns: fresh ones per table, a Column belongs to one table."""
    return col("aoi_id", sa.String(64)), col("source", sa.String(128)), col("scene_id", sa.String(256))


def upgrade() -> None:
    ensure_table(
        "scenes", row_id(), *scene_key(), col("acquired", TZ), col("published", TZ, True),
        col("cloud_cover", sa.Float, True), col("status", sa.String(16)), col("attempts", sa.Integer),
        col("last_error", sa.Text, True), col("scene_ref", sa.JSON), col("image_key", sa.String(512), True),
        col("mask_key", sa.String(512), True), col("valid_fraction", sa.Float, True),
        col("updated_at", TZ), col("version", sa.String(128), True),
        col("previous_version", sa.String(128), True), col("revisions", sa.Integer, True),
        unique=("aoi_id", "source", "scene_id"), indexes=("aoi_id", "acquired"))
    ensure_table(
        "poll_marks", row_id(), col("aoi_id", sa.String(64)), col("source", sa.String(128)),
        col("published_mark", TZ), col("updated_at", TZ), unique=("aoi_id", "source"))
    ensure_table(
        "track_counts", row_id(), *scene_key(), col("track_id", sa.String(128)),
        col("detector_version", sa.String(32)), col("acquired", TZ), col("length_m", sa.Float),
        col("occupied_m", sa.Float), col("cars", sa.Integer), col("cars_low", sa.Integer),
        col("cars_high", sa.Integer), col("valid_fraction", sa.Float), col("segments", sa.JSON, True),
        unique=("aoi_id", "source", "scene_id", "track_id", "detector_version"), indexes=("aoi_id",))
    ensure_table(
        "scene_counts", row_id(), *scene_key(), col("detector_version", sa.String(32)),
        col("acquired", TZ), col("occupied_m", sa.Float), col("cars", sa.Integer),
        col("cars_low", sa.Integer), col("cars_high", sa.Integer), col("valid_fraction", sa.Float),
        col("shift_dx_m", sa.Float), col("shift_dy_m", sa.Float), col("flags", sa.Text),
        col("image_key", sa.String(512)), col("mask_key", sa.String(512)),
        col("background_scenes", sa.Integer, True), col("background_id", sa.String(16), True),
        col("surge", sa.Boolean), col("surge_ratio", sa.Float, True), col("baseline_cars", sa.Float, True),
        unique=("aoi_id", "source", "scene_id", "detector_version"), indexes=("aoi_id", "acquired"))
    upgrade_alert_tables()


def upgrade_alert_tables() -> None:
    def episode() -> tuple[sa.Column[Any], ...]:
        return (col("aoi_id", sa.String(64)), col("detector_version", sa.String(32)),
                col("episode_id", sa.String(400)))

    def delivery_key() -> tuple[sa.Column[Any], ...]:
        return col("key", sa.String(64)), col("url", sa.String(1024))

    ensure_table(
        "alerts", row_id(), *episode(), col("status", sa.String(16)), col("opened_at", TZ),
        col("updated_at", TZ), col("closed_at", TZ, True), col("peak_scene_id", sa.String(256)),
        col("peak_cars", sa.Integer), col("peak_cars_low", sa.Integer), col("peak_cars_high", sa.Integer),
        col("ratio", sa.Float, True), col("baseline_cars", sa.Float, True), col("scene_ids", sa.JSON),
        unique=("aoi_id", "detector_version", "episode_id"), indexes=("aoi_id",))
    ensure_table(
        "alert_transitions", sa.Column("key", sa.String(64), primary_key=True), *episode(),
        col("kind", sa.String(16)), col("scene_id", sa.String(256)), col("at", TZ), col("body", sa.Text),
        col("event_emitted_at", TZ, True), col("created_at", TZ), indexes=("aoi_id",))
    ensure_table(
        "webhook_outbox", row_id(), *delivery_key(), col("status", sa.String(16)), col("runs", sa.Integer),
        col("last_error", sa.Text, True), col("delivered_at", TZ, True), unique=("key", "url"),
        indexes=("key",))
    ensure_table(
        "webhook_deliveries", row_id(), *delivery_key(), col("outcome", sa.String(16)),
        col("attempts", sa.Integer), col("status_code", sa.Integer, True), col("error", sa.Text, True),
        col("at", TZ), indexes=("key",))


def downgrade() -> None:
    for name in ("webhook_deliveries", "webhook_outbox", "alert_transitions", "alerts", "scene_counts",
                 "track_counts", "poll_marks", "scenes"):
        op.drop_table(name)
