"""railwatch run as a user runs it, for the tests that run it whole: the CLI in a subprocess with
a home of its own; the long-running processes it talks to (a Prefect server, a Dask scheduler
and workers, `railwatch serve`), always stopped; and a simulated season rendered once per session
and copied into each test's RAILWATCH_HOME. One module, so every such test gets the same
environment and the same error output."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIM_START, SIM_END = "2023-09-08", "2023-09-13"  # 6 simulated days: clear, loaded, quick


def cli_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without its PREFECT_* and RAILWATCH_* variables (nothing of the user's or
    another test's leaks in), confined to `home`, offline, plus `settings`. Without a
    PREFECT_API_URL in `settings` the CLI runs its flows on Prefect's ephemeral API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAILWATCH_"))}
    return env | {"RAILWATCH_HOME": str(home), "RAILWATCH_AOI_DIR": str(REPO / "aois"),
                  "PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                  "PYTHONPATH": str(REPO)} | settings


def run_cli(args: list[str], env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    """`railwatch ARGS` in a subprocess; its exit status must be `expect` (the test fails with
    both output streams otherwise)."""
    proc = subprocess.run([sys.executable, "-m", "railwatch.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == expect, (f"railwatch {' '.join(args)} exited {proc.returncode}:\n"
                                       f"{proc.stdout}\n{proc.stderr}")
    return proc


def scene_summary(stdout: str) -> dict[str, int]:
    """The numbers of the CLI's `scenes:` line."""
    match = re.search(r"scenes: (\d+) found .*?, (\d+) already done, (\d+) processed, (\d+) failed", stdout)
    assert match, stdout
    return dict(zip(("found", "done", "processed", "failed"), map(int, match.groups()), strict=True))


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own session, logging to `log`; terminated (then killed) on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class PrefectServer:
    """A running `prefect server start`: its URL (UI) and its PREFECT_HOME (its database)."""

    url: str
    home: Path

    @property
    def api_url(self) -> str:
        """What a client's PREFECT_API_URL is set to."""
        return f"{self.url}/api"


@contextmanager
def reporting_to(server: PrefectServer) -> Iterator[None]:
    """In-process runs report to `server`; what they still hold goes there before the settings
    change back. Prefect keeps one log and one events worker per process for every server URL:
    left bound to this one, they would take a later test's events (test_prefect_publish)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        try:
            yield
        finally:
            APILogWorker.drain_all()
            EventsWorker.drain_all()


@contextmanager
def prefect_server(folder: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port, its home and log in `folder`: up (its
    health check answers) on entry, stopped on exit — a stop lets its services write what they
    hold (events, task runs) to its database."""
    from tests.servers import free_port, wait_until_up

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}", folder / "prefect")
    env = cli_env(folder, PREFECT_API_URL=server.api_url)  # the UI asks the API at that URL
    log = folder / "server.log"
    with process([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                  "--port", str(port)], env, log) as proc:
        wait_until_up(f"{server.api_url}/health", seconds=300, process=proc, log=log)
        yield server


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `name` in the session's shared temp folder, `build` run into it by the first
    test process that asks (under pytest-xdist the processes' base temp folders share a parent,
    and a lock file there makes the others wait for it, then read the same files)."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or the process dies)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that died half way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's folder for SIM_START..SIM_END over the demo AOI, rendered once per session
    and shared by every test process (each module that imports this fixture gets its own
    instance, all of them share the files)."""
    def render(home: Path) -> None:
        run_cli(["simulate", "--start", SIM_START, "--end", SIM_END, "--scene-km", "4", "3.6"],
                cli_env(home))

    return built_once(tmp_path_factory, "ops-sim", render) / "simulator"


def home_with(simulated: Path, home: Path) -> Path:
    """A fresh RAILWATCH_HOME holding a copy of the simulated catalog."""
    shutil.copytree(simulated, home / "simulator")
    return home


@contextmanager
def dask_cluster(logs: Path, env: dict[str, str], workers: int = 2,
                 scheduler_args: tuple[str, ...] = ()) -> Iterator[str]:
    """A real `dask scheduler` and `workers` `dask worker` processes on loopback, stopped on
    exit; the scheduler's address."""
    from distributed import Client

    from tests.servers import free_port

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    logs.mkdir(parents=True, exist_ok=True)
    env = {**env, "PYTHONFAULTHANDLER": "1"}  # a crashed process's Python stack, in its log
    with ExitStack() as stack:
        stack.enter_context(process([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                     "--no-dashboard", *scheduler_args], env, logs / "scheduler.log"))
        for n in range(workers):
            stack.enter_context(process([*dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                         "--name", f"w{n + 1}", "--host", "127.0.0.1"],
                                        env, logs / f"worker{n + 1}.log"))
        with Client(address, timeout=120) as client:
            client.wait_for_workers(workers, timeout=300)
        yield address
