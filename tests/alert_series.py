"""A stored count series with a known surge (no imagery), and the demo AOI, for alert tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from railwatch.adapters.counts import CountsStore
from railwatch.alerts import flag_stored_series
from railwatch.aoi import AOI, load_aoi
from railwatch.models import SceneCount

REPO = Path(__file__).resolve().parents[1]
VERSION = "test-1"
QUIET = [10, 12, 8, 15, 9, 11, 13, 10, 12, 14]
START = datetime(2023, 9, 1, 10, 30, tzinfo=UTC)


def demo_aoi() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


def scene_count(aoi: AOI, day: int, cars: int, valid: float = 1.0) -> SceneCount:
    folder = f"{aoi.id}/2023/{day:03d}/sim-s{day:02d}"
    return SceneCount(
        aoi_id=aoi.id, source="simulator", scene_id=f"s{day:02d}",
        acquired=START + timedelta(days=day), detector_version=VERSION, tracks=(),
        occupied_m=cars * 14.5, cars=cars, cars_low=cars - 3, cars_high=cars + 4,
        valid_fraction=valid, shift_m=(0.0, 0.0), flags=() if valid >= 0.8 else ("cloudy",),
        image_key=f"{folder}/image.tif", mask_key=f"{folder}/mask.tif")


def store_series(db: CountsStore, aoi: AOI, counts: list[int], first_day: int = 0) -> list[str]:
    """Upsert scenes on consecutive days from `first_day` and flag the series as the flows do."""
    db.upsert_counts([scene_count(aoi, first_day + i, c) for i, c in enumerate(counts)])
    return flag_stored_series(aoi, db, VERSION)
