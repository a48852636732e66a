"""End to end, as a user runs it: simulate → `railwatch backfill` (Prefect flow, Dask workers) → counts.

The flow runs in a subprocess exactly like the CLI does (Prefect ephemeral API, a LocalCluster of
worker processes, a local folder store, SQLite); the test then reads the stored counts and scores
them against the simulator's truth files.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli_runs import cli_env, run_cli
from tests.receivers import serving

WEBHOOK_SECRET = "e2e-secret-do-not-log"
# slow; and its module fixtures are costly: all its tests on one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_pipeline_e2e")]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("railwatch-home")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Any]:
    with serving(WEBHOOK_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def env(home: Path, receiver: Any) -> dict[str, str]:
    return cli_env(home, RAILWATCH_WEBHOOK_URLS=json.dumps([f"http://127.0.0.1:{receiver.server_port}/hook"]),
                   RAILWATCH_WEBHOOK_SECRET=WEBHOOK_SECRET,
                   RAILWATCH_WEBHOOK_MAX_AGE_DAYS="0")  # the simulated season is from 2023


@pytest.fixture(scope="module")
def first_run(env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    # a quiet stretch, the empty day, the first loaded days, and the 73-car day
    run_cli(["simulate", "--start", "2023-09-08", "--end", "2023-09-24"], env)
    run_cli(["simulate", "--start", "2023-10-05", "--end", "2023-10-05"], env)
    # weekly chunks: once a chunk's clips make the reference final, the clips of the chunks
    # after it are measured as they are clipped
    return run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-01",
                    "--end", "2023-10-10", "--chunk-days", "7"], env)


def stored(home: Path, table: str, order: str = "acquired, scene_id") -> list[dict[str, Any]]:
    with sqlite3.connect(home / "counts.db") as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def truths(home: Path) -> dict[str, dict[str, Any]]:
    return {json.loads(p.read_text())["scene_id"]: json.loads(p.read_text())
            for p in (home / "simulator" / "tumangang").glob("*/truth.json")}


def test_counts_follow_truth_and_surge_is_flagged(first_run: subprocess.CompletedProcess[str],
                                                  home: Path) -> None:
    """Accuracy guards on the pipeline's path (bench/detect_accuracy.py scores the core on many
    more scenes): measured 3.1 cars mean absolute error, worst 6, 78 cars at the 73-car peak."""
    rows = stored(home, "scene_counts")
    truth = truths(home)
    assert len(rows) == len(truth) == 18
    by_date = {str(r["acquired"])[:10]: r for r in rows}
    clear_rows = [r for r in rows if r["valid_fraction"] >= 0.9]
    clear = [(r["cars"], truth[r["scene_id"]]["total"]["cars_clear"]) for r in clear_rows]
    assert len(clear) >= 12
    detected, actual = np.array(clear, dtype=float).T
    assert np.corrcoef(detected, actual)[0, 1] > 0.95, clear  # counts follow the truth
    assert np.abs(detected - actual).mean() <= 5, clear
    held = [r["cars_low"] <= truth[r["scene_id"]]["total"]["cars"] <= r["cars_high"] for r in clear_rows]
    assert np.mean(held) >= 0.85, clear  # the ≈90 % interval
    empty, peak = by_date["2023-09-14"], by_date["2023-10-05"]
    assert empty["cars"] <= 5 and not empty["surge"]
    assert 62 <= peak["cars"] <= 84 and peak["surge"]  # 73 cars ± 15 %
    assert peak["surge_ratio"] > 2.0
    # the yard loads on 09-22 (34 cars, 1.7× the known maximum): flagged that day. Its quiet
    # days swing from empty to 20 cars, so even the true 34 is only z 2.4 above them; the count's
    # interval lies wholly above the maximum, which makes it a surge (core/surge.py)
    assert by_date["2023-09-22"]["surge"]
    assert not any(r["surge"] for d, r in by_date.items() if d < "2023-09-22")
    for r in rows:  # clouds never become cars, and cloudy scenes say so
        t = truth[r["scene_id"]]["total"]
        if r["valid_fraction"] < 0.8:
            assert "cloudy" in str(r["flags"]) and not r["surge"], r
            assert r["cars_low"] <= t["cars"] + 5, (r, t)
    # per-track rows exist for every scene and add up to the totals
    tracks = stored(home, "track_counts")
    assert len(tracks) == len(rows) * 7
    for r in rows:
        assert sum(t["cars"] for t in tracks if t["scene_id"] == r["scene_id"]) == r["cars"]


def test_clips_are_in_the_store_and_output_says_where(first_run: subprocess.CompletedProcess[str],
                                                      home: Path) -> None:
    clips = sorted((home / "store" / "tumangang").rglob("image.tif"))
    assert len(clips) == 18 and (home / "store" / "tumangang" / "reference" / "composite.tif").is_file()
    assert (home / "store" / "tumangang" / "background" / "model.npz").is_file()
    rows = stored(home, "scene_counts")  # every count says which clip and background it came from
    assert all(r["image_key"].endswith("image.tif") and r["mask_key"] for r in rows)
    # the first days: the AOI's first ten clear scenes but themselves, not the reference
    # composite (which holds the trains standing through its five dates)
    assert rows[0]["background_scenes"] == 10 and len(rows[0]["background_id"]) == 12
    assert rows[-1]["background_scenes"] >= 5 and len(rows[-1]["background_id"]) == 12
    assert "18 processed" in first_run.stdout and "0 failed" in first_run.stdout
    ahead = re.search(r"(\d+) measured as they were clipped", first_run.stdout)
    assert ahead and 0 < int(ahead.group(1)) < 18, first_run.stdout  # the first chunks cannot be


def test_rerun_is_idempotent(first_run: subprocess.CompletedProcess[str], env: dict[str, str],
                             home: Path) -> None:
    before_counts, before_tracks = stored(home, "scene_counts"), stored(home, "track_counts")
    model = home / "store" / "tumangang" / "background" / "model.npz"
    model_bytes, model_mtime = model.read_bytes(), model.stat().st_mtime_ns
    mtimes = {p: p.stat().st_mtime_ns for p in (home / "store").rglob("*.tif")}
    again = run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-01",
                     "--end", "2023-10-10"], env)
    assert "18 already done, 0 processed" in again.stdout
    assert stored(home, "scene_counts") == before_counts
    assert stored(home, "track_counts") == before_tracks
    assert {p: p.stat().st_mtime_ns for p in (home / "store").rglob("*.tif")} == mtimes
    model = home / "store" / "tumangang" / "background" / "model.npz"
    assert model.read_bytes() == model_bytes and model.stat().st_mtime_ns == model_mtime
    model.write_bytes(model_bytes[:1000])  # a torn model is rebuilt from the stored profiles
    # reprocessing replaces, never adds; from a scene of the reference on, so every clip is
    # measured in its own step: the same counts as the first run measured as it clipped
    forced = run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-09-12",
                      "--end", "2023-09-24", "--force"], env)
    assert "13 processed" in forced.stdout and "measured as they were clipped" not in forced.stdout
    assert stored(home, "scene_counts") == before_counts
    assert {p: p.stat().st_mtime_ns for p in (home / "store").rglob("*.tif")} == mtimes
    assert model.read_bytes() == model_bytes


def test_lost_background_model_is_rebuilt(first_run: subprocess.CompletedProcess[str],
                                          env: dict[str, str], home: Path) -> None:
    model = home / "store" / "tumangang" / "background" / "model.npz"
    before, counts = model.read_bytes(), stored(home, "scene_counts")
    model.unlink()
    run_cli(["backfill", "--aoi", "tumangang", "--start", "2023-10-05", "--end", "2023-10-05",
             "--force"], env)
    assert model.read_bytes() == before and stored(home, "scene_counts") == counts


def test_quicklooks_are_rendered_by_worker_tasks_before_publishing(
        first_run: subprocess.CompletedProcess[str], home: Path) -> None:
    """The first backfill renders its alerts' quicklooks in batch tasks on the Dask workers,
    all finished before `publish-alerts` starts (which then finds them in the store); those of
    the surge's first days while a later chunk is still detected, not all at the end; one
    for each scene a transition points at, none for another. Runs with no new transition
    submit none. Read from the run's own Prefect database."""
    with sqlite3.connect(home / "prefect" / "prefect.db") as con:
        runs = con.execute(
            "SELECT f.id, t.name, t.state_type, t.start_time, t.end_time FROM task_run t "
            "JOIN flow_run f ON t.flow_run_id = f.id WHERE t.name IN "
            "('render-quicklooks', 'publish-alerts', 'detect-aoi') "
            "ORDER BY f.start_time, t.start_time").fetchall()
    first = runs[0][0]
    renders = [r for r in runs if r[0] == first and r[1] == "render-quicklooks"]
    (publishing,) = [r for r in runs if r[0] == first and r[1] == "publish-alerts"]
    detects = [r for r in runs if r[0] == first and r[1] == "detect-aoi"]
    assert renders and all(r[2] == "COMPLETED" for r in renders)
    assert max(r[4] for r in renders) <= publishing[3]
    assert min(r[3] for r in renders) < max(r[4] for r in detects)  # before the last chunk's
    assert not [r for r in runs if r[0] != first and r[1] == "render-quicklooks"]
    pictures = list((home / "store" / "tumangang").rglob("quicklook.png"))
    transitions = stored(home, "alert_transitions", "at")
    assert len(pictures) == len({t["scene_id"] for t in transitions}) > 1


def test_surge_is_delivered_once_with_quicklooks_and_report(
        first_run: subprocess.CompletedProcess[str], env: dict[str, str], home: Path,
        receiver: Any) -> None:
    """Runs after the reruns above: they added no alert and delivered nothing twice."""
    bodies = receiver.handled_bodies
    assert bodies and bodies[0]["event"] == "railwatch.surge.opened"
    assert bodies[0]["date"] == "2023-09-22" and bodies[0]["aoi"]["id"] == "tumangang"
    keys = [b["idempotency_key"] for b in bodies]
    assert len(keys) == len(set(keys)) == len(stored(home, "alert_transitions", "at"))
    peak = max(bodies, key=lambda b: b["scene"]["cars"])
    assert peak["date"] == "2023-10-05" and peak["scene"]["ratio"] > 2.0
    quicklook = Path(peak["scene"]["links"]["quicklook"].removeprefix("file://"))
    assert quicklook.is_file() and quicklook.name == "quicklook.png"
    (alert,) = stored(home, "alerts", "opened_at")
    assert alert["peak_scene_id"] == peak["scene"]["scene_id"]
    assert WEBHOOK_SECRET not in first_run.stdout + first_run.stderr
    proc = run_cli(["report", "--aoi", "tumangang", "--since", "2023-09-01"], env)
    assert (home / "reports" / "tumangang-cars-since-2023-09-01.png").is_file(), proc.stdout
    assert (home / "reports" / "tumangang-after-2023-10-05.png").is_file(), proc.stdout
    (before,) = (home / "reports").glob("tumangang-before-2023-09-*.png")  # the last quiet clear day
    assert "2023-09-08" <= before.stem[-10:] < "2023-09-22"
    run_cli(["export", "--aoi", "tumangang", "--format", "csv", "--out", str(home / "c.csv")], env)
    assert len((home / "c.csv").read_text().splitlines()) == 19
