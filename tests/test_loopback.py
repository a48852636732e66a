"""Nothing railwatch starts by default listens beyond loopback: the Dask LocalCluster of a run
(scheduler and workers, no dashboard). Prefect's ephemeral API binds 127.0.0.1 by itself."""

from __future__ import annotations

from urllib.parse import urlparse

from distributed import LocalCluster

from flows.runner import dask_task_runner
from railwatch.settings import Settings


def test_the_default_dask_cluster_listens_on_loopback_only() -> None:
    runner = dask_task_runner(Settings())
    with LocalCluster(**runner.cluster_kwargs) as cluster:
        addresses = [cluster.scheduler_address, *(w.address for w in cluster.workers.values())]
        assert all(urlparse(a).hostname == "127.0.0.1" for a in addresses), addresses
        assert runner.cluster_kwargs["dashboard_address"] is None  # no dashboard at all



def test_a_cluster_of_threads_has_no_address_to_bind() -> None:
    runner = dask_task_runner(Settings(dask_cluster_kwargs={"processes": False, "n_workers": 1}))
    with LocalCluster(**runner.cluster_kwargs) as cluster:
        assert cluster.scheduler_address.startswith("inproc://")
