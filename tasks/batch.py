"""One Prefect task (one Dask task) runs one step over several AOIs' pieces of work.

Task runs then follow the amount of work, not the number of AOIs × date chunks: Prefect and
Dask cost ≈75 ms per task here and Prefect servers struggle past a few thousand task runs.
"""

from __future__ import annotations

import pickle
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from tasks.common import retrying
from tasks.ingest import clip_scenes, index_clips
from tasks.measure import build_reference, detect_aoi, measure_clips, update_background
from tasks.publish import publish_alerts, render_quicklooks
from tasks.search import discover_scenes
from tasks.store import store_counts

STEPS = {t.name: t for t in (discover_scenes, clip_scenes, index_clips, build_reference, measure_clips,
                             update_background, detect_aoi, store_counts, render_quicklooks,
                             publish_alerts)}


class PackedCalls:
    """A batch's call arguments, pickled once in the flow and opaque to Prefect and Dask.

    Submitting a task, Prefect walks its parameters twice (for upstream futures) and Dask
    hashes them for the task's key: every AOI, grid and clip record of the batch, ≈ 0.2 s a
    submission with a 90-day history, growing with it; the flow waits for each. Bytes are
    hashed at once and carry no futures (the batches' order is given by `wait_for`)."""

    __slots__ = ("payload",)

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.payload = pickle.dumps(calls, protocol=pickle.HIGHEST_PROTOCOL)

    def calls(self) -> list[tuple[Any, ...]]:
        loaded: list[tuple[Any, ...]] = pickle.loads(self.payload)  # the flow's own bytes
        return loaded

    def __dask_tokenize__(self) -> bytes:
        return self.payload


@task(name="batch", task_run_name="{step}", cache_policy=NONE, **retrying())
def run_batch(step: str, calls: list[tuple[Any, ...]] | PackedCalls) -> list[Any]:
    """The result of `step` for each call's arguments, in order (every step is idempotent, so a
    retry of the whole batch is safe)."""
    fn = STEPS[step].fn
    return [fn(*args) for args in (calls.calls() if isinstance(calls, PackedCalls) else calls)]
