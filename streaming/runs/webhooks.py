"""Completion webhooks: an ended run's final record, POSTed and signed, in the background.

The run notes its target when it opens (`expect`: the request's own `webhook` URL, else
STREAM_WEBHOOK_URL) and, once its final row is written, hands the session over
(`run_ended`): a task of its own reads the row and delivers it. Nothing here is awaited by
the run, so a slow or failing receiver never delays or fails a stream. Each attempt is
recorded as a `WebhookDelivery` row. Network errors, timeouts, 429 and 5xx are retried
with exponential backoff and jitter, up to STREAM_WEBHOOK_ATTEMPTS; any other answer is
final. At shutdown, deliveries in flight get STREAM_CANCEL_GRACE_SECONDS to finish (`drain`);
the rest are abandoned and logged. Only the worker that ran the run delivers its webhook.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx2
from django.utils import timezone

from streaming import records
from streaming.api.errors import Refusal
from streaming.api.responses import SessionRecord
from streaming.api.webhooks import decode_secret, signature
from streaming.conf import conf
from streaming.observe import metrics
from streaming.runs.endings import LIVE_STATUSES

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
USER_AGENT = "deerflow-streaming-webhooks"
ABANDONED = "abandoned: the server shut down"
RECORD_ABANDONED_SECONDS = 1.0

_targets: dict[uuid.UUID, str] = {}
_in_flight: set[asyncio.Task[None]] = set()
_shared: list[tuple[asyncio.AbstractEventLoop, httpx2.AsyncClient]] = []


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt got: a status, or the error that stopped it."""

    status_code: int | None
    error: str
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        """Whether the receiver accepted the webhook (2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Whether another attempt may fare better: no answer, 429, or a 5xx."""
        code = self.status_code
        return code is None or code == 429 or code >= 500


def allowed_target(url: str | None) -> str | None:
    """Return a request's own webhook URL if its host is allowed (422 if not), or None.

    Only hosts listed in STREAM_WEBHOOK_ALLOWED_HOSTS may be named: an empty list allows
    none, so a server does not post to addresses its clients choose unless told to.
    """
    if url is None:
        return None
    host = urlsplit(url).hostname or ""
    if host.lower() not in conf.webhook_allowed_hosts:
        raise Refusal.WEBHOOK_NOT_ALLOWED.error()
    return url


def expect(session_id: uuid.UUID, request_url: str | None) -> None:
    """Note where the run of `session_id` reports its end (the request's URL, else the
    configured one)."""
    if url := request_url or conf.webhook_url:
        _targets[session_id] = url


def run_ended(session_id: uuid.UUID) -> None:
    """Start delivering the ended run's webhook, if it has one, in a task of its own."""
    url = _targets.pop(session_id, None)
    if url is None:
        return
    task = asyncio.get_running_loop().create_task(
        _deliver(session_id, url), name=f"webhook-{session_id}"
    )
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def drain(*, within: float) -> None:
    """Wait up to `within` seconds for the deliveries in flight, abandon the rest, close
    the client."""
    if pending := set(_in_flight):
        logger.info("Waiting for %d webhook deliveries before shutting down", len(pending))
        _, unfinished = await asyncio.wait(pending, timeout=within)
        for task in unfinished:
            task.cancel()
        if unfinished:  # each records its abandoned attempt
            await asyncio.wait(unfinished, timeout=RECORD_ABANDONED_SECONDS)
    if _shared:
        _, client = _shared.pop()
        await client.aclose()


async def _deliver(session_id: uuid.UUID, url: str) -> None:
    try:
        key = decode_secret(conf.webhook_secret)
    except ValueError as exc:
        logger.warning("Stream %s: webhook not sent: STREAM_WEBHOOK_SECRET %s", session_id, exc)
        metrics.WEBHOOKS.labels("skipped").inc()
        return
    session = await records.get_session(session_id)
    if session is None or session.status in LIVE_STATUSES:
        # Its end could not be written; the stale-session sweep ends the row later.
        logger.warning("Stream %s: webhook not sent: its record is not final", session_id)
        metrics.WEBHOOKS.labels("skipped").inc()
        return
    body = SessionRecord.of(session).model_dump_json().encode()
    attempts = max(1, conf.webhook_attempts)
    attempt = 0
    try:
        for attempt in range(1, attempts + 1):
            result = await _attempt(session_id, url, key, body, attempt=attempt)
            if result.delivered or not result.retryable or attempt == attempts:
                break
            await asyncio.sleep(_backoff(attempt, result.retry_after))
    except asyncio.CancelledError:
        logger.warning(
            "Stream %s: webhook to %s abandoned at shutdown after %d attempts",
            session_id,
            url,
            attempt,
        )
        metrics.WEBHOOKS.labels("abandoned").inc()
        raise
    outcome = "delivered" if result.delivered else "failed" if result.retryable else "refused"
    metrics.WEBHOOKS.labels(outcome).inc()
    if not result.delivered:
        logger.warning(
            "Stream %s: webhook to %s not delivered (%s after %d attempts)",
            session_id,
            url,
            result.error,
            attempt,
        )


async def _attempt(
    session_id: uuid.UUID, url: str, key: bytes, body: bytes, *, attempt: int
) -> Attempt:
    """POST the body once, signed now; record the attempt."""
    at = timezone.now()
    timestamp = int(at.timestamp())
    webhook_id = str(session_id)  # the same on every attempt: receivers deduplicate by it
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, webhook_id=webhook_id, timestamp=timestamp, body=body),
    }
    started = time.perf_counter()
    try:
        # The whole attempt is bounded, a receiver that trickles its answer too.
        async with asyncio.timeout(conf.webhook_timeout_seconds):
            async with _client().stream("POST", url, content=body, headers=headers) as response:
                result = Attempt(
                    response.status_code,
                    "" if response.is_success else f"HTTP {response.status_code}",
                    _retry_after(response.headers.get("retry-after")),
                )
    except TimeoutError:
        result = Attempt(None, f"no answer within {conf.webhook_timeout_seconds:g} s")
    except asyncio.CancelledError:  # the server is shutting down (see `drain`)
        await _record(session_id, url, at, started, Attempt(None, ABANDONED), attempt=attempt)
        raise
    except Exception as exc:  # any failure to reach the receiver is worth another attempt
        result = Attempt(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    if not result.delivered:
        logger.info("Stream %s: webhook attempt %d failed: %s", session_id, attempt, result.error)
    await _record(session_id, url, at, started, result, attempt=attempt)
    return result


async def _record(
    session_id: uuid.UUID,
    url: str,
    at: datetime,
    started: float,
    result: Attempt,
    *,
    attempt: int,
) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000)
    try:
        await records.record_delivery(
            session_id,
            attempt=attempt,
            url=url,
            at=at,
            status_code=result.status_code,
            error=result.error,
            duration_ms=duration_ms,
        )
    except Exception as exc:
        logger.warning("Stream %s: could not record a webhook attempt (%s)", session_id, exc)


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Return the pause before attempt `attempt + 1`: doubling, half of it random, capped."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** (attempt - 1))
    pause = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        pause = max(pause, min(retry_after, BACKOFF_MAX_SECONDS))
    return pause


def _retry_after(value: str | None) -> float | None:
    """Return a `Retry-After` given in seconds (a date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else 0.0


def _client() -> httpx2.AsyncClient:
    """Return the HTTP client shared by this event loop's deliveries."""
    loop = asyncio.get_running_loop()
    if not _shared or _shared[0][0] is not loop:
        # Redirects are not followed: the target was checked, where it points was not.
        client = httpx2.AsyncClient(timeout=conf.webhook_timeout_seconds, follow_redirects=False)
        _shared[:] = [(loop, client)]
    return _shared[0][1]
