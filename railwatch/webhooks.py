"""Webhook delivery: signed JSON bodies, retries with backoff, a log and a retry queue.

Each body is signed with HMAC-SHA256 over its raw bytes (header `X-Railwatch-Signature:
sha256=<hex>`) and carries an `Idempotency-Key` header, equal to the body's `idempotency_key`,
so a receiver can drop a body it has already handled. Within a run a delivery is tried
`attempts` times (connection errors, timeouts, 408/429/5xx; other 4xx are not retried);
what still fails stays in the outbox as `failed` and is tried again by the next run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from railwatch.adapters.alerts import AlertStore, DeliveryResult
from railwatch.errors import ConfigError

SIGNATURE_HEADER = "X-Railwatch-Signature"
EVENT_HEADER = "X-Railwatch-Event"
KEY_HEADER = "Idempotency-Key"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

log = logging.getLogger(__name__)


class _Retryable(Exception):
    """A failure worth another attempt in this run."""


def sign(secret: SecretStr, body: bytes) -> str:
    """The signature header's value for a raw body."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: SecretStr, body: bytes, header: str | None) -> bool:
    """True when `header` is the body's signature (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def redact(url: str) -> str:
    """A URL fit for logs: webhook paths often embed tokens (Slack, Teams), so only the host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


def check_config(urls: Sequence[str], secret: SecretStr | None) -> None:
    """Refuse webhook settings that would send unsigned or to nowhere."""
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ConfigError(f"RAILWATCH_WEBHOOK_URLS: {redact(url)} is not an http(s) URL")
    if urls and (secret is None or not secret.get_secret_value()):
        raise ConfigError("RAILWATCH_WEBHOOK_SECRET is not set: webhooks are signed; set a secret "
                          "shared with the receivers")


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], attempts: int,
         backoff_s: float) -> DeliveryResult:
    """POST one body with retries; never raises for HTTP or transport failures."""
    tries = 0
    last: httpx.Response | None = None

    def once() -> httpx.Response:
        nonlocal tries, last
        tries += 1
        try:
            last = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            last = None
            raise _Retryable(f"{exc.__class__.__name__}: {exc}") from exc
        if last.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {last.status_code}")
        return last

    retrying = Retrying(stop=stop_after_attempt(attempts), reraise=False,
                        wait=wait_exponential(multiplier=backoff_s, max=max(backoff_s * 30, 0.0)),
                        retry=retry_if_exception_type(_Retryable))
    try:
        response = retrying(once)
    except RetryError as exc:
        error = exc.last_attempt.exception()
        return DeliveryResult(False, tries, last.status_code if last is not None else None, str(error))
    if response.is_success:
        return DeliveryResult(True, tries, response.status_code)
    return DeliveryResult(False, tries, response.status_code, f"HTTP {response.status_code}")


def deliver_due(alerts: AlertStore, aoi_id: str, secret: SecretStr, timeout_s: float = 10.0,
                attempts: int = 4, backoff_s: float = 1.0, logger: Any = log) -> list[DeliveryResult]:
    """Send every pending or failed delivery of an AOI once (with in-run retries); log each."""
    results = []
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for outbox, transition in alerts.due(aoi_id):
            body = transition.body.encode()
            event = json.loads(transition.body)["event"]
            headers = {"Content-Type": "application/json", KEY_HEADER: transition.key,
                       EVENT_HEADER: event, SIGNATURE_HEADER: sign(secret, body),
                       "User-Agent": "railwatch-webhook/1"}
            result = post(client, outbox.url, body, headers, attempts, backoff_s)
            alerts.record(transition.key, outbox.url, result)
            (logger.info if result.delivered else logger.warning)(
                "webhook %s %s to %s: %s after %d attempt(s)%s", event, transition.key,
                redact(outbox.url), "delivered" if result.delivered else "failed", result.attempts,
                "" if result.delivered else f" ({result.error}); queued for the next run")
            results.append(result)
    return results
