"""What every railwatch task shares: the retry rule and the failure record."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from railwatch.errors import TransientError
from railwatch.settings import get_settings


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only infrastructure failures; bad input is reported, never retried."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def retrying() -> dict[str, Any]:
    """Every railwatch task's retry options: transient failures only, after each of the
    configured delays (RAILWATCH_TASK_RETRY_DELAYS_S, read when the tasks are imported)."""
    delays = list(get_settings().task_retry_delays_s)
    return {"retries": len(delays), "retry_delay_seconds": delays, "retry_condition_fn": retry_transient}


class FailedScene(BaseModel):
    """A scene that could not be processed, and why (kept in the scene registry)."""

    model_config = ConfigDict(frozen=True)

    aoi_id: str
    source: str
    scene_id: str
    reason: str
