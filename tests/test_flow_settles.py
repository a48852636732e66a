"""A failing run ends once its batches have (`flows.common.settled`): none is left running
behind it, to write after the run reported its failure, or to meet the rerun that follows (in
a process running several flows, such a leftover read the next run's settings: the fault
suite's S3 cases saw it retry against the next world's endpoint with its credentials)."""

from __future__ import annotations

import signal
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import settled
from railwatch.interrupts import noting_ctrl_c
from tests.cli_runs import PrefectServer, reporting_to


@pytest.fixture
def on_test_server(prefect_server: PrefectServer) -> Iterator[None]:
    """The runs report to the test process's Prefect server (`reporting_to`)."""
    with reporting_to(prefect_server):
        yield


@task
def fails_at_once() -> None:
    raise RuntimeError("a batch failed")


@task
def finishes_later(marker: Path) -> None:
    time.sleep(3.0)
    marker.write_text("written after the other batch failed")


def run_failing(marker: Path, settle: bool) -> tuple[bool, str]:
    """(whether the slow batch had finished when the failure reached the flow, the failure)."""

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]
    def failing(marker: Path) -> tuple[bool, str]:
        batches: weakref.WeakSet[PrefectFuture[Any]] = weakref.WeakSet()
        slow = finishes_later.submit(marker)
        fast = fails_at_once.submit()
        batches.update([slow, fast])
        try:
            if settle:
                with settled(batches):
                    fast.result()
            else:
                fast.result()
        except RuntimeError as exc:
            return marker.exists(), str(exc)
        return False, "no failure"

    result: tuple[bool, str] = failing(marker)
    return result


@pytest.mark.parametrize("settle", [True, False], ids=["settled", "as-before"])
@pytest.mark.usefixtures("on_test_server")
def test_a_failing_run_ends_after_its_batches(tmp_path: Path, settle: bool) -> None:
    finished, failure = run_failing(tmp_path / "marker", settle)
    assert failure == "a batch failed"  # the batch's own error is what the run fails with
    # without settling, the failure overtakes the slow batch: what the fix is for
    assert finished is settle


def test_ctrl_c_is_not_held_up() -> None:
    """An interrupt is not an Exception: it leaves at once, without waiting for any batch."""
    class NeverDone:
        def __hash__(self) -> int:
            return 0

    with pytest.raises(KeyboardInterrupt), settled([NeverDone()]):  # type: ignore[list-item]
        raise KeyboardInterrupt


@task
def held(release: Path, marker: Path) -> None:
    """A batch that runs until the test releases it (20 s at most)."""
    deadline = time.monotonic() + 20.0
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    marker.write_text("finished")


@flow(task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def interrupted_in_a_library(release: Path, marker: Path) -> tuple[bool, str]:
    batches: weakref.WeakSet[PrefectFuture[Any]] = weakref.WeakSet()
    batches.add(held.submit(release, marker))
    try:
        with settled(batches):
            try:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C, delivered to this process
            except KeyboardInterrupt as exc:  # as pydantic's serializer wraps it (seen in CI)
                raise RuntimeError(f"Error calling function `_ser_model`: {exc!r}") from None
    except RuntimeError as exc:
        finished = marker.exists()
        release.touch()  # the task runner waits for its threads as the flow ends
        return finished, str(exc)
    return False, "no failure"


@pytest.mark.usefixtures("on_test_server")
def test_ctrl_c_turned_into_an_error_by_a_library_is_not_held_up(tmp_path: Path) -> None:
    """The same Ctrl-C stopped the Dask workers of the run's batches, which would then never
    finish: the run leaves at once (a CI run hung here until the test's 90 s ran out)."""
    release, marker = tmp_path / "release", tmp_path / "marker"
    with noting_ctrl_c():  # as `railwatch` runs every command
        finished, failure = interrupted_in_a_library(release, marker)
    assert failure == "Error calling function `_ser_model`: KeyboardInterrupt()"
    assert not finished  # left while the batch still ran
