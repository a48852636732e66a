"""`railwatch search`: what a backfill would process and what it would skip and why, from the
same catalogs and scene registry the flows use, registering nothing."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from railwatch.adapters.counts import CountsStore
from railwatch.models import SceneRef
from railwatch.simulate.stac import COLLECTION_ID
from tests.cli_runs import REPO, cli_env, run_cli
from tests.stac_api_server import BROKEN, why_no_server


def railwatch(args: list[str], home: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cli_env(home), expect)


def planned(home: Path, *extra: str) -> list[dict[str, Any]]:
    proc = railwatch(["search", "--aoi", "tumangang", "--start", "2023-09-20", "--end", "2023-09-22",
                      "--format", "json", *extra], home)
    return list(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("search-home")
    railwatch(["simulate", "--start", "2023-09-20", "--end", "2023-09-22"], home)
    return home


def test_search_lists_new_done_and_given_up_scenes_and_registers_nothing(home: Path) -> None:
    first = planned(home)
    assert [p["reason"] for p in first] == ["new"] * 3 and all(p["process"] for p in first)
    db = CountsStore(f"sqlite:///{home / 'counts.db'}")
    assert db.scene_rows("tumangang") == []  # a dry run: nothing registered
    scenes = [SceneRef.model_validate(_scene_ref(home, p["scene_id"])) for p in first]
    db.register_scenes("tumangang", scenes)
    db.mark_scene("tumangang", "simulator", scenes[0].scene_id, "detected")
    for _ in range(3):
        db.mark_scene("tumangang", "simulator", scenes[1].scene_id, "failed", error="corrupt tile")
    by_id = {p["scene_id"]: p for p in planned(home)}
    assert by_id[scenes[0].scene_id] == {**by_id[scenes[0].scene_id], "process": False, "reason": "done"}
    assert not by_id[scenes[1].scene_id]["process"]
    assert "gave up" in by_id[scenes[1].scene_id]["reason"]
    assert "corrupt tile" in by_id[scenes[1].scene_id]["reason"]
    pending = by_id[scenes[2].scene_id]
    assert pending["process"] and pending["reason"] == "pending (discovered)"
    forced = {p["scene_id"]: p for p in planned(home, "--force")}
    assert all(p["process"] for p in forced.values())
    assert len(db.scene_rows("tumangang")) == 3


def test_bad_dates_and_unconfigured_sources_are_one_line_errors(home: Path) -> None:
    proc = railwatch(["search", "--aoi", "tumangang", "--start", "2023-13-01", "--end", "2023-09-22"],
                     home, expect=2)
    assert "--start '2023-13-01' is not a date" in proc.stderr
    proc = railwatch(["search", "--aoi", "tumangang", "--start", "2023-09-20", "--end", "2023-09-22",
                      "--source", "planet"], home, expect=2)
    assert "no planet source is configured" in proc.stderr


@pytest.mark.skipif(why_no_server() is not None, reason=str(why_no_server()))
def test_search_a_stac_api_lists_unusable_items_with_their_reason(home: Path, stac_api: str) -> None:
    source = f"stac+{stac_api}?collections={COLLECTION_ID}&page_size=7"
    proc = railwatch(["search", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-10-10",
                      "--source", source, "--format", "json"], home)
    found = json.loads(proc.stdout)
    usable = [p for p in found if p["acquired"]]
    assert len(usable) == 40 and all(p["process"] for p in usable)
    (broken,) = [p for p in found if p["scene_id"] == BROKEN]
    assert not broken["process"] and "unusable item" in broken["reason"]
    assert datetime.fromisoformat(usable[0]["acquired"]) >= datetime(2023, 9, 1, tzinfo=UTC)


def _scene_ref(home: Path, scene_id: str) -> dict[str, Any]:
    """The scene as the simulator catalog lists it (what a run would register)."""
    from railwatch.adapters.catalogs import SimulatorCatalog
    from railwatch.aoi import load_aoi

    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    found = SimulatorCatalog(home / "simulator").search(
        aoi, datetime(2023, 9, 20, tzinfo=UTC), datetime(2023, 9, 23, tzinfo=UTC))
    (scene,) = [s for s in found.scenes if s.scene_id == scene_id]
    return dict(json.loads(scene.model_dump_json()))
