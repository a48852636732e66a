"""Bad command lines and bad settings end in one line on stderr that says what to fix, exit
status 2, before Prefect or Dask start: a usage slip, a date that is not one, a setting that does
not parse or is out of range, a catalog, Dask or webhook setting that cannot work, an output path
that cannot be written, a damaged counts database."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from railwatch.cli import main
from railwatch.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
BACKFILL = ["backfill", "--start", "2023-09-01", "--end", "2023-09-02"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh RAILWATCH_HOME with the shipped AOI registry; settings read anew per test."""
    for name in [n for n in __import__("os").environ if n.startswith("RAILWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAILWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAILWATCH_AOI_DIR", str(REPO / "aois"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("railwatch: error: "), err
    return err[0]


@pytest.mark.parametrize(("argv", "says"), [
    (["backfill", "--end", "2023-09-02"], "Missing option '--start'"),
    (["nosuch"], "No such command 'nosuch'"),
    ([*BACKFILL, "--bogus"], "No such option: --bogus"),
    ([*BACKFILL, "--chunk-days", "0"], "'--chunk-days'"),
    (["backfill", "--start", "2023-13-01", "--end", "2023-12-02"], "--start '2023-13-01' is not a date"),
    (["backfill", "--start", "2023-09-02", "--end", "2023-09-01"], "--end 2023-09-01 is before --start"),
    (["search", "--aoi", "tumangang", "--start", "2023-09-01", "--end", "2023-09-02",
      "--format", "xml"], "--format 'xml'"),
    (["watch", "--lookback-days", "-5"], "'--lookback-days'"),
])
def test_a_bad_command_line_is_one_line(argv: list[str], says: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert says in one_line_error(argv, capsys)


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("RAILWATCH_DASK_WORKERS", "-1", "RAILWATCH_DASK_WORKERS='-1': Input should be greater"),
    ("RAILWATCH_BATCH_SIZE", "abc", "RAILWATCH_BATCH_SIZE='abc'"),
    ("RAILWATCH_CATALOGS", "simulator", "RAILWATCH_CATALOGS: not valid JSON"),
    ("RAILWATCH_CATALOGS", "[]", "RAILWATCH_CATALOGS=[]"),
    ("RAILWATCH_TASK_RETRY_DELAYS_S", "[-1]", "RAILWATCH_TASK_RETRY_DELAYS_S"),
    ("RAILWATCH_CLIP_COMPRESSION", "lzw", "'zstd' or 'deflate'"),
])
def test_a_bad_setting_names_its_variable(variable: str, value: str, says: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, value)
    assert says in one_line_error(["export", "--aoi", "tumangang"], capsys)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("RAILWATCH_CATALOGS", '["foo"]', "catalog source 'foo' is not supported"),
    ("RAILWATCH_CATALOGS", '["stac+http://127.0.0.1:{port}/api?collections=x"]', "cannot connect"),
    ("RAILWATCH_DASK_CLUSTER_CLASS", "no.such.Cluster", "cannot be imported"),
    ("RAILWATCH_DASK_ADDRESS", "notanaddress", "missing port number"),
    ("RAILWATCH_DASK_ADDRESS", "tcp://127.0.0.1:{port}", "no scheduler answers there"),
    ("RAILWATCH_WEBHOOK_URLS", '["ftp://example.org/x"]', "is not an http(s) URL"),
    ("RAILWATCH_AOI_DIR", "{empty}", "no AOI files"),
])
def test_a_setting_that_cannot_work_stops_the_run_before_it_starts(
        variable: str, value: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(variable, value.format(port=_closed_port(), empty=tmp_path / "empty"))
    assert says in one_line_error(BACKFILL, capsys)
    assert not (tmp_path / "home" / "store").exists()  # no work was started


def test_an_output_path_that_cannot_be_written_is_named(home: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from railwatch.adapters.counts import CountsStore
    from railwatch.core import DETECTOR_VERSION
    from tests.alert_series import demo_aoi, scene_count

    aoi = demo_aoi()
    CountsStore(f"sqlite:///{home / 'counts.db'}").upsert_counts(
        [scene_count(aoi, day, 10).model_copy(update={"detector_version": DETECTOR_VERSION})
         for day in range(3)])
    folder = tmp_path / "a-folder"
    folder.mkdir()
    line = one_line_error(["export", "--aoi", "tumangang", "--out", str(folder)], capsys)
    assert f"{folder}: cannot write there" in line
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    line = one_line_error(["report", "--aoi", "tumangang", "--out-dir", str(a_file)], capsys)
    assert f"{a_file}: cannot write there" in line


def test_a_damaged_counts_database_is_one_line(home: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from railwatch.adapters.counts import CountsStore

    CountsStore(f"sqlite:///{home / 'counts.db'}")  # created and migrated
    db = home / "counts.db"
    shutil.copy(db, tmp_path / "good.db")
    data = bytearray(db.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first overwritten
    db.write_bytes(bytes(data))
    line = one_line_error(["export", "--aoi", "tumangang"], capsys)
    assert "the counts database" in line
