"""What one stream run reports: live, first event, how it ended, in logs, metrics, a span.

A run reports when it starts, at its first event and when it ends; nothing per event.
"""

from __future__ import annotations

import logging
import time

from streaming.observe import metrics
from streaming.observe.context import StreamTags, current_stream
from streaming.observe.tracing import RunSpan
from streaming.runs.endings import EndReason

logger = logging.getLogger(__name__)


class RunObservation:
    """Report one run's life to the metrics and the log."""

    __slots__ = ("_cancelled_at", "_live", "_span", "_started_at", "first_event_ms", "tags")

    def __init__(self, tags: StreamTags) -> None:
        self.tags = tags
        self._started_at = time.perf_counter()
        self._cancelled_at: float | None = None
        self._live = False
        self._span: RunSpan | None = None
        # Written with the run's final row (the live panel's time to first event).
        self.first_event_ms: float | None = None

    def started(self, parent: object) -> None:
        """Count the run as live; name it in the logs and open its span (child of `parent`).

        Call it in the run's own context: what runs there is logged and traced as the run's.
        """
        current_stream.set(self.tags)
        self._span = RunSpan(self.tags, parent)
        self._started_at = time.perf_counter()
        self._live = True
        metrics.STREAMS_LIVE.labels(self.tags.kind, self.tags.transport).inc()

    def first_event(self) -> None:
        """Observe the time from the start to the source's first event."""
        elapsed = time.perf_counter() - self._started_at
        self.first_event_ms = elapsed * 1000
        metrics.FIRST_EVENT.observe(elapsed)

    def stop_requested(self, reason: EndReason) -> None:
        """Note when a user's cancel reached the run (its latency ends with the row)."""
        if reason is EndReason.USER_CANCEL:
            self._cancelled_at = time.perf_counter()

    def ended(self, reason: EndReason, delivered: int) -> None:
        """Log and count how the run ended, once its row is written."""
        now = time.perf_counter()
        tags = self.tags
        if self._live:
            self._live = False
            metrics.STREAMS_LIVE.labels(tags.kind, tags.transport).dec()
            metrics.STREAM_DURATION.observe(now - self._started_at)
        metrics.STREAMS_ENDED.labels(tags.kind, reason.status, reason.value or "none").inc()
        metrics.EVENTS_SENT.inc(delivered)
        if self._span is not None:
            self._span.end(reason, delivered)
        if self._cancelled_at is not None and reason is EndReason.USER_CANCEL:
            metrics.CANCEL_LATENCY.observe(now - self._cancelled_at)
        if reason is EndReason.NONE:
            logger.info("Stream %s completed after %d events", tags.session_id, delivered)
        elif reason is EndReason.ERROR:
            # Logged with its exception where it happened.
            metrics.SOURCE_ERRORS.labels(tags.kind, tags.source).inc()
        else:
            label = reason.label
            logger.info("Stream %s ended: %s after %d events", tags.session_id, label, delivered)
