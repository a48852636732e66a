"""The Dask task runner of every railwatch flow, from the settings (read when a flow module is
imported, i.e. once per worker process or `railwatch serve`)."""

from __future__ import annotations

from typing import Any

from prefect_dask.task_runners import DaskTaskRunner

from railwatch.settings import Settings, get_settings


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
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)
