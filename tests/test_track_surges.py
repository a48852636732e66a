"""Per-track surges: each track's count against its own history, stored per track row and shown
in the counts table — a siding filling up while another empties moves no total."""

from __future__ import annotations

from rich.console import Console

from railwatch.adapters.counts import CountsStore
from railwatch.alerts import flag_stored_series
from railwatch.models import TrackCount
from railwatch.report import counts_table
from tests.alert_series import QUIET, VERSION, demo_aoi, scene_count


def track(track_id: str, cars: int) -> TrackCount:
    return TrackCount(track_id=track_id, length_m=900, occupied_m=cars * 14.5, cars=cars,
                      cars_low=max(cars - 2, 0), cars_high=cars + 2, valid_fraction=1.0)


def test_a_track_surges_while_the_total_stays_calm(db_url: str) -> None:
    aoi, db = demo_aoi(), CountsStore(db_url)
    days = [(QUIET[i], QUIET[-1 - i]) for i in range(len(QUIET))] + [(0, 24), (11, 12)]
    db.upsert_counts([scene_count(aoi, day, a + b).model_copy(
        update={"tracks": (track("t1", a), track("t2", b))}) for day, (a, b) in enumerate(days)])

    assert flag_stored_series(aoi, db, VERSION) == []  # 24 cars in all: an ordinary day
    flagged = [(t.scene_id, t.track_id) for t in db.track_counts(aoi.id, detector_version=VERSION) if t.surge]
    assert flagged == [("s10", "t2")]
    (t2,) = [t for t in db.track_counts(aoi.id, "s10", VERSION) if t.track_id == "t2"]
    assert t2.baseline_cars is not None and t2.baseline_cars < 15 and t2.surge_ratio is not None

    console = Console(width=200, record=True)
    console.print(counts_table(aoi, db.scene_counts(aoi.id, VERSION), db.track_counts(aoi.id)))
    lines = [line for line in console.export_text().splitlines() if "track t2 surge" in line]
    assert len(lines) == 1 and "s10" in lines[0]


def test_flags_follow_a_scene_detected_again(db_url: str) -> None:
    """Only the flags that changed are written: a surging scene detected again with an ordinary
    count loses its flags (scene and track), and the rows around it keep theirs."""
    aoi, db = demo_aoi(), CountsStore(db_url)
    days = [(QUIET[i], QUIET[-1 - i]) for i in range(len(QUIET))] + [(0, 24), (30, 40)]
    counts = [scene_count(aoi, day, a + b).model_copy(update={"tracks": (track("t1", a), track("t2", b))})
              for day, (a, b) in enumerate(days)]
    db.upsert_counts(counts)
    assert flag_stored_series(aoi, db, VERSION) == ["s11"]
    before = {(t.scene_id, t.track_id): (t.surge, t.surge_ratio, t.baseline_cars)
              for t in db.track_counts(aoi.id, detector_version=VERSION)}
    assert before[("s11", "t1")][0] and before[("s10", "t2")][0]

    again = counts[11].model_copy(update={"cars": 22, "tracks": (track("t1", 11), track("t2", 11))})
    db.upsert_counts([again])
    assert flag_stored_series(aoi, db, VERSION) == []
    (s11,) = [r for r in db.scene_counts(aoi.id, VERSION) if r.scene_id == "s11"]
    assert not s11.surge and s11.surge_ratio is not None and s11.surge_ratio < 1.5
    after = {(t.scene_id, t.track_id): (t.surge, t.surge_ratio, t.baseline_cars)
             for t in db.track_counts(aoi.id, detector_version=VERSION)}
    assert not after[("s11", "t1")][0] and not after[("s11", "t2")][0]
    others = [k for k in before if k[0] != "s11"]
    assert [after[k] for k in others] == [before[k] for k in others]


def test_a_swinging_track_surges_when_its_interval_lies_above_its_maximum(db_url: str) -> None:
    """As for the scene (tests/test_surge.py): a track that swings between empty and full has a
    wide spread, so a count far above its maximum is only z ≈ 1.7; its interval lying wholly
    above that maximum flags it. The same count with an interval reaching down to the maximum
    does not."""
    swings = [0, 10, 0, 10, 1, 9, 0, 10, 2, 10]

    def stored(low: int) -> list[tuple[str, str]]:
        aoi, db = demo_aoi(), CountsStore(db_url)
        days = [(c, c, c) for c in swings] + [(17, low, 19)]
        db.upsert_counts([scene_count(aoi, day, cars + 10).model_copy(update={"tracks": (
            TrackCount(track_id="t1", length_m=900, occupied_m=cars * 14.5, cars=cars,
                       cars_low=lo, cars_high=hi, valid_fraction=1.0), track("t2", 10))})
            for day, (cars, lo, hi) in enumerate(days)])
        flag_stored_series(aoi, db, VERSION)
        return [(t.scene_id, t.track_id) for t in db.track_counts(aoi.id, detector_version=VERSION)
                if t.surge]

    assert stored(low=15) == [("s10", "t1")]  # 15-19 cars for a maximum of 10
    assert stored(low=9) == []  # 9-19: it may be no more than the maximum
