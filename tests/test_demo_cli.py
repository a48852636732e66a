"""`railwatch demo` where it cannot run: a one-line error that says what to do."""

from __future__ import annotations

from pathlib import Path

from tests.cli_runs import cli_env, run_cli


def test_demo_without_the_aoi_registry_says_where_it_looked(tmp_path: Path) -> None:
    empty = tmp_path / "aois"
    empty.mkdir()
    proc = run_cli(["demo"], cli_env(tmp_path / "home", RAILWATCH_AOI_DIR=str(empty)), expect=2)
    assert f"the demo reads {empty / 'tumangang.geojson'}, which is not there" in proc.stderr
    assert "set RAILWATCH_AOI_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "simulator").exists()  # nothing was simulated
