"""Exports (CSV, Parquet) and the report's time series, from a stored series with a surge."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import CountsStore
from railwatch.adapters.store import LocalStore
from railwatch.brief import export_counts, parse_since, recount_hint, write_report
from railwatch.errors import InvalidInput
from railwatch.publish import update_alerts
from railwatch.quicklook import clip_grid
from tests.alert_series import QUIET, VERSION, demo_aoi, scene_count, store_series


@pytest.fixture
def db(tmp_path: Path) -> CountsStore:
    aoi, db = demo_aoi(), CountsStore(f"sqlite:///{tmp_path / 'counts.db'}")
    store_series(db, aoi, [*QUIET, 35, 45, 40, 11, 12, 10])
    update_alerts(aoi, clip_grid(aoi, 60.0), db, AlertStore(db), LocalStore(tmp_path / "store"),
                  VERSION, [])
    return db


def test_export_csv_and_parquet_hold_the_same_rows(tmp_path: Path, db: CountsStore) -> None:
    rows = db.scene_counts("tumangang", VERSION)
    with export_counts(rows, tmp_path / "c.csv", "csv").open() as fh:
        table = list(csv.DictReader(fh))
    parquet = pq.read_table(export_counts(rows, tmp_path / "c.parquet", "parquet")).to_pylist()
    assert len(table) == len(parquet) == 16
    assert [r["surge"] for r in table].count("True") == 3
    assert sum(r["surge"] for r in parquet) == 3 and parquet[11]["cars"] == 45
    assert table[11]["acquired"] == "2023-09-12T10:30:00+00:00"
    with pytest.raises(InvalidInput, match="--format must be one of csv, parquet, not 'xlsx'"):
        export_counts(rows, tmp_path / "c.xlsx", "xlsx")


def test_report_plot_marks_the_alert_and_checks_its_input(tmp_path: Path, db: CountsStore) -> None:
    aoi, store = demo_aoi(), LocalStore(tmp_path / "store")
    report = write_report(aoi, db, store, VERSION, date(2023, 9, 5), tmp_path / "out", 60.0)
    assert report.alert is not None and report.alert.peak_cars == 45
    assert report.before is None and report.after is None  # no clips in this store
    with Image.open(report.plot) as img:
        assert img.size[0] > 1000 and len(set(img.convert("L").getdata())) > 20
    with pytest.raises(InvalidInput, match="no counts for AOI 'tumangang' since 2024-01-01"):
        write_report(aoi, db, store, VERSION, date(2024, 1, 1), tmp_path / "out", 60.0)
    with pytest.raises(InvalidInput, match="--since must be a date like 2023-09-01"):
        parse_since("last week")


def test_after_a_detector_upgrade_the_report_says_to_recount(tmp_path: Path, db: CountsStore) -> None:
    """Counts by an earlier detector only: the report says which, over which dates, and the
    forced backfill that recounts them (a plain one skips scenes already done); with no counts
    at all it says to run a backfill."""
    aoi, store = demo_aoi(), LocalStore(tmp_path / "store")
    assert db.detector_versions(aoi.id)[0][:2] == (VERSION, 16)
    with pytest.raises(InvalidInput, match=(
            r"has 0 scene\(s\) counted by detector test-2 \(this railwatch\) and 16 by "
            r"detector test-1, acquired 2023-09-01 to 2023-09-16: recount them with "
            r"`railwatch backfill --aoi tumangang --start 2023-09-01 --end 2023-09-16 --force`")):
        write_report(aoi, db, store, "test-2", None, tmp_path / "out", 60.0)
    empty = CountsStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(InvalidInput, match="no counts stored for AOI 'tumangang': run `railwatch backfill`"):
        write_report(aoi, empty, store, VERSION, None, tmp_path / "out", 60.0)


def test_a_partly_recounted_series_says_what_is_left(db: CountsStore) -> None:
    """A new detector that has counted a few scenes (a watch after an upgrade): the hint names the
    earlier version's scenes to recount; once it has counted as many, there is none."""
    aoi = demo_aoi()

    def recounted(days: range | tuple[int, ...]) -> None:
        db.upsert_counts([scene_count(aoi, d, 10).model_copy(update={"detector_version": "test-2"})
                          for d in days])

    recounted((30, 31))
    hint = recount_hint(aoi, db, "test-2")
    assert hint is not None and "has 2 scene(s) counted by detector test-2" in hint
    assert "16 by detector test-1, acquired 2023-09-01 to 2023-09-16" in hint
    assert recount_hint(aoi, db, VERSION) is None
    recounted(range(16))
    assert recount_hint(aoi, db, "test-2") is None
