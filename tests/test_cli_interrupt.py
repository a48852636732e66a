"""Ctrl-C on a backfill: the run stops within seconds with exit status 130 and a last line saying
so (the embedded Prefect API, started out of the terminal's reach, records the crash instead of
dying first), and the rerun finishes the work without doing any of it twice. (The LocalCluster's
worker processes share the terminal too and print their own KeyboardInterrupt.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_runs import REPO, SIM_END, SIM_START, cli_env, home_with, run_cli, scene_summary, simulated

__all__ = ["simulated"]  # the session fixture, imported for pytest
BACKFILL = ["backfill", "--start", SIM_START, "--end", SIM_END, "--chunk-days", "2"]


@pytest.mark.slow
def test_ctrl_c_stops_a_backfill_at_once_and_the_rerun_finishes_it(simulated: Path,
                                                                    tmp_path: Path) -> None:
    home = home_with(simulated, tmp_path / "home")
    env = cli_env(home)
    proc = subprocess.Popen([sys.executable, "-m", "railwatch.cli", *BACKFILL], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # a group of its own, as a terminal gives
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not any((home / "store").rglob("image.tif")):  # the flow is doing work
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        out, err = proc.communicate(timeout=90)  # was: ~70-140 s of failed state reports
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == ("railwatch: interrupted; a rerun resumes where this "
                                            "one stopped"), err
    assert "httpx.ConnectError" not in err, err  # the API it reports to outlived the signal
    summary = scene_summary(run_cli(BACKFILL, env).stdout)
    assert summary["failed"] == 0 and summary["done"] + summary["processed"] == summary["found"] > 0
    again = scene_summary(run_cli(BACKFILL, env).stdout)
    assert again["processed"] == 0 and again["done"] == summary["found"]


def test_ctrl_c_turned_into_another_error_by_a_library_is_still_an_interrupt(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Where the KeyboardInterrupt lands decides what comes out: pydantic's serializer wraps it
    into a PydanticSerializationError (seen in CI). A pressed Ctrl-C still ends in 130."""
    import railwatch.cli as cli

    def interrupted_inside_a_library(argv: list[str] | None) -> int:
        try:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, delivered to this process
        except KeyboardInterrupt as exc:
            raise RuntimeError(f"Error calling function `_ser_model`: {exc!r}") from None
        return 0

    monkeypatch.setattr(cli, "_main", interrupted_inside_a_library)
    before = signal.getsignal(signal.SIGINT)
    assert cli.main(["backfill"]) == 130
    assert capsys.readouterr().err.strip() == ("railwatch: interrupted; a rerun resumes where "
                                               "this one stopped")
    assert signal.getsignal(signal.SIGINT) is before  # put back
