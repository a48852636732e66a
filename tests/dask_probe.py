"""A Dask scheduler preload for tests (`dask scheduler --preload tests/dask_probe.py`): records
the pickled size, railwatch step and priority of every task the scheduler receives, in the order
received, and which worker ran it, one JSON line per event, in $RAILWATCH_DASK_PROBE — what went
through the scheduler, measured at the scheduler."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.protocol.pickle import dumps


class Probe(SchedulerPlugin):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def update_graph(self, scheduler: Any, *, keys: set[Any], **kwargs: Any) -> None:
        with self.path.open("a") as out:
            for key in keys:
                state = scheduler.tasks.get(key)
                if state is not None:
                    size = len(dumps(state.run_spec))  # as Dask ships it (cloudpickle)
                    # a railwatch batch task's parameters name its step (tasks.batch.run_batch)
                    params = getattr(state.run_spec, "kwargs", {}).get("parameters")
                    step = params.get("step") if isinstance(params, dict) else None
                    out.write(json.dumps({"key": str(key), "spec_bytes": size, "step": step,
                                          "user_priority": -state.priority[0]}) + "\n")

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "memory" and kwargs.get("worker"):
            with self.path.open("a") as out:
                out.write(json.dumps({"key": str(key), "worker": kwargs["worker"],
                                      "result_bytes": kwargs.get("nbytes")}) + "\n")


def dask_setup(scheduler: Any) -> None:
    scheduler.add_plugin(Probe(os.environ["RAILWATCH_DASK_PROBE"]))
