"""Compute faults: a Dask worker process killed (SIGKILL) while it runs the detection, and the
flow's own process killed in the middle of a backfill, then the backfill run again."""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any

from tests.cli_runs import cli_env, dask_cluster
from tests.fault_lab import Case, Lab
from tests.faultkit import AOI_ID, REPO, WORLD_END, WORLD_START, FaultRow, Outcome, judge


def running(task_name: str) -> bool:
    """Whether a task run of that name is running now (asked of this process's Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterName,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            name=TaskRunFilterName(any_=[task_name]),
            state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]))))
    return bool(runs)


def kill_worker_during(address: str, task_name: str, done: threading.Event, killed: list[str]) -> None:
    """SIGKILL the worker that runs a `task_name` task run. Prefect's API learns that a task
    run is running from its events, which may arrive after a short detection has ended; the
    Dask scheduler knows at once: the detection batches are the only tasks that wait for
    others (the AOIs' background updates), so a worker processing one of those runs it."""
    from distributed import Client

    def processing_with_inputs(dask_scheduler: Any) -> list[str]:  # defined here: sent by value
        return [ts.processing_on.address for ts in dask_scheduler.tasks.values()
                if ts.state == "processing" and ts.dependencies and ts.processing_on is not None]

    with Client(address, timeout=60) as client:
        pids = client.run(os.getpid)
        while not done.is_set() and not killed:
            try:
                busy = client.run_on_scheduler(processing_with_inputs)
                if not busy and running(task_name):
                    busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                    return
            except Exception:  # the API may not be up yet: ask again
                pass
            time.sleep(0.02)


def this_process_api() -> str:
    """The URL of the Prefect API this process's flow runs use (the one set, else its ephemeral
    server), for the external workers to report their task runs to."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return str(PREFECT_API_URL.value())
    server = SubprocessASGIServer()
    if not server.running:
        server.start()
    return server.api_url


def worker_killed(lab: Lab, layer: str, fault: str) -> FaultRow:
    world = lab.world(fault)
    env = cli_env(world.home / "dask") | world.settings | {"PREFECT_API_URL": this_process_api()}
    with dask_cluster(world.home / "dask-logs", env) as address:
        world.settings["RAILWATCH_DASK_ADDRESS"] = address
        done, killed = threading.Event(), []
        # run in this context: its Prefect settings (the API URL) are what `running` asks
        killer = threading.Thread(target=contextvars.copy_context().run,
                                  args=(kill_worker_during, address, "detect-aoi", done, killed), daemon=True)
        killer.start()
        during = world.backfill()
        done.set()
        killer.join(30)
        if not killed:
            during = Outcome("unclear", error=f"no worker was killed: detection was never seen running "
                             f"({during.describe()})")
        else:
            during = Outcome(during.state, during.processed, during.failed,
                             during.error or f"(worker {killed[0]} killed during detection)")
        after = world.backfill()
    return judge(layer, fault, lab.baseline, world, during, after)


def flow_killed(lab: Lab, layer: str, fault: str) -> FaultRow:
    """`railwatch backfill` (a day per chunk) killed with SIGKILL once some scenes are done."""
    world = lab.world(fault)
    # the CLI reports to the lab's Prefect server, or else starts its ephemeral API (patiently)
    prefect = ({"PREFECT_API_URL": lab.prefect_api()} if lab.prefect_api
               else {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"})
    env = cli_env(world.home) | world.settings | prefect
    command = [sys.executable, "-m", "railwatch.cli", "backfill", "--aoi", AOI_ID,
               "--start", str(WORLD_START), "--end", str(WORLD_END), "--chunk-days", "1"]
    with ExitStack() as stack:
        log = stack.enter_context((world.home / "backfill.log").open("ab"))
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 600
        detected = 0
        while proc.poll() is None and time.monotonic() < deadline:
            detected = sum(status == "detected" for status, _, _ in world.registry_or_none().values())
            if detected >= 1:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        proc.wait()
    if proc.returncode != -signal.SIGKILL:
        during = Outcome("unclear", error=f"the backfill was not killed (exit {proc.returncode})")
    else:
        during = Outcome("failed", error=f"killed (SIGKILL) with {detected} of 4 scene(s) done; the "
                         "registry kept them")
    return judge(layer, fault, lab.baseline, world, during, world.backfill())


CASES = [
    Case("compute", "a Dask worker process killed (SIGKILL) during detection", worker_killed),
    Case("compute", "the backfill's process killed (SIGKILL) mid-run, then run again", flow_killed),
]
