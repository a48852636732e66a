"""The Dask task runner of every railwatch flow, from the settings (read when a flow module is
imported, i.e. once per worker process or `railwatch serve`)."""

from __future__ import annotations

from typing import Any

import dask
from prefect_dask.task_runners import DaskTaskRunner

from railwatch.settings import Settings, get_settings

# Dask's statistical profiler reads every thread's stack (`sys._current_frames`) every 10 ms. On
# CPython 3.11 that call can deadlock with the garbage collector (a `threading.local` freed while
# the interpreter's thread list is locked; fixed in 3.12): it hung a test's in-process worker,
# GIL held, for good. railwatch does not use the profile. The LocalCluster's workers inherit
# this setting (the Nanny passes this process's Dask config on); set it on external workers too.
dask.config.set({"distributed.worker.profile.enabled": False})
# Dask's nanny starts each worker process with MALLOC_TRIM_THRESHOLD_=65536 (freed memory goes
# back to the OS at once). Setting it also pins glibc's mmap threshold at 128 KiB, so every large
# numpy temporary is a fresh mmap and its pages are faulted in again: the backfill's plain loop
# ran 25 % slower with it (system time ×3). Unset, glibc adapts both thresholds to the workload.
dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})


def dask_task_runner(settings: Settings | None = None) -> Any:
    """An existing scheduler (`RAILWATCH_DASK_ADDRESS`), else a cluster of the configured class
    (`RAILWATCH_DASK_CLUSTER_CLASS` + `RAILWATCH_DASK_CLUSTER_KWARGS`), else a LocalCluster of
    worker processes started and stopped with the flow run."""
    settings = settings or get_settings()
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    if settings.dask_cluster_class:
        return DaskTaskRunner(cluster_class=settings.dask_cluster_class,
                              cluster_kwargs=dict(settings.dask_cluster_kwargs))
    kwargs: dict[str, Any] = {"n_workers": settings.dask_workers, "threads_per_worker": 1,
                              "processes": True, "dashboard_address": None,
                              "host": "127.0.0.1"}  # nothing listens beyond this machine
    kwargs |= dict(settings.dask_cluster_kwargs)
    if not kwargs["processes"]:
        kwargs.pop("host")  # threads in this process talk in-process: no address at all
    return LocalDaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


class LocalDaskTaskRunner(DaskTaskRunner):
    """A LocalCluster whose worker processes report to the flow's own Prefect API.

    Left alone, a worker process without ``PREFECT_API_URL`` in its environment (the embedded
    default: an ephemeral API in the flow's process) starts an ephemeral API server of its own
    for its task runs: a uvicorn process and its start-up per worker, and more writers on the
    same SQLite file. The URL the flow uses is handed to the workers instead."""

    def __enter__(self) -> LocalDaskTaskRunner:
        url = flow_api_url()
        if url and self.cluster_kwargs.get("processes", True):
            env = {**self.cluster_kwargs.get("env", {}), "PREFECT_API_URL": url}
            self.cluster_kwargs = {**self.cluster_kwargs, "env": env}
        super().__enter__()  # type: ignore[no-untyped-call]
        return self


def flow_api_url() -> str | None:
    """The Prefect API this process talks to: the configured one, else its ephemeral server
    (started here if the flow has not started it yet); None when there is neither."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    configured = PREFECT_API_URL.value()
    if configured:
        return str(configured)
    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()  # a no-op when it runs already
    return str(server.api_url)
