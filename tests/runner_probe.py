"""Run as a script (`python tests/runner_probe.py`) in an environment without PREFECT_API_URL:
a flow on railwatch's LocalCluster runner asks its worker which Prefect API it reports to, which
processes it has started and how its environment was set; prints one JSON line. (A script, so
that the task is shipped to the worker by value.)"""

from __future__ import annotations

import json
import os

from prefect import flow, task

from flows.runner import dask_task_runner, flow_api_url
from railwatch.settings import Settings


@task
def where_the_worker_reports() -> dict[str, object]:
    import psutil
    from prefect.settings import PREFECT_API_URL

    children = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
    return {"url": PREFECT_API_URL.value(), "pid": os.getpid(), "children": children,
            "environ": {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}}


@flow(task_runner=dask_task_runner(Settings(dask_workers=1)))
def probe() -> dict[str, object]:
    seen = where_the_worker_reports.submit().result()
    return seen | {"flow_url": flow_api_url(), "flow_pid": os.getpid()}


if __name__ == "__main__":
    print(json.dumps(probe()))
