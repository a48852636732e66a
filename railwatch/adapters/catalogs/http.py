"""HTTP politeness shared by the STAC API source: a process-wide request-rate limit per host and
retries with backoff that honour ``Retry-After`` (providers throttle parallel searches: 429/503).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)


class RateLimiter:
    """At most `rate` requests per second from this process (shared by all threads)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self.requests = 0

    def wait(self) -> None:
        """Block until the next request may go out, and count it."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
            self.requests += 1
        if start > now:
            time.sleep(start - now)


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(host: str, rate: float) -> RateLimiter:
    """One limiter per (host, rate) per process, so parallel searches share the budget."""
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault((host, rate), RateLimiter(rate))


def retry_policy(retries: int, backoff_s: float, max_backoff_s: float = 60.0) -> Retry:
    """Retry throttling, server errors and dropped connections; POST searches are idempotent."""
    return Retry(
        total=retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # every method, POST /search included
        backoff_factor=backoff_s,
        backoff_max=max_backoff_s,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response reaches the caller, which names the status
    )


class LimitedAdapter(HTTPAdapter):
    """A requests adapter that waits for the rate limiter before each request it sends."""

    def __init__(self, limiter: RateLimiter, max_retries: Retry) -> None:
        super().__init__(max_retries=max_retries)
        self.limiter = limiter

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        self.limiter.wait()
        return super().send(request, *args, **kwargs)
