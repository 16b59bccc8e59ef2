"""The server's Prometheus metrics, and their exposition (one process, or many).

Labels are bounded: kind, transport, status, end reason, source name, HTTP status, resume
outcome; never a session or a thread. With PROMETHEUS_MULTIPROC_DIR set (before the
process starts), every worker writes its values to files there and `/metrics` sums them
(prometheus_client's multiprocess mode); the live-streams gauge counts live workers only:
a worker removes its own at shutdown, and every worker start and every scrape removes those
of workers whose process is gone.
Runs report once when they start and once when they end, never per event.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The names are all legacy-valid, so the text is the 0.0.4 format every scraper reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Streams last from milliseconds (a demo on loopback) to the 30-minute deadline.
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, float("inf"))
# A first event (or token) is expected within seconds.
LATENCY_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    float("inf"),
)

STREAMS_LIVE = Gauge(
    "deerflow_streams_live",
    "Streams running now.",
    ["kind", "transport"],
    multiprocess_mode="livesum",
)
STREAMS_ENDED = Counter(
    "deerflow_streams_ended", "Streams ended, by how.", ["kind", "status", "reason"]
)
STREAM_DURATION = Histogram(
    "deerflow_stream_duration_seconds",
    "From a stream's start to its end.",
    buckets=DURATION_BUCKETS,
)
FIRST_EVENT = Histogram(
    "deerflow_stream_first_event_seconds",
    "From a stream's start to its source's first event.",
    buckets=LATENCY_BUCKETS,
)
EVENTS_SENT = Counter("deerflow_stream_events_sent", "Events handed to clients' connections.")
RESUMES = Counter("deerflow_stream_resumes", "Resumes of a stream, by outcome.", ["outcome"])
CANCEL_LATENCY = Histogram(
    "deerflow_stream_cancel_latency_seconds",
    "From a user's cancel reaching the run to its final row written.",
    buckets=LATENCY_BUCKETS,
)
REFUSALS = Counter("deerflow_refusals", "Requests refused before streaming, by status.", ["status"])
SOURCE_ERRORS = Counter(
    "deerflow_source_errors", "Streams whose source raised.", ["kind", "source"]
)
WEBHOOKS = Counter(
    "deerflow_webhooks",
    "Completion webhooks, by outcome: delivered, refused (a final 4xx answer), failed "
    "(every attempt failed), abandoned (shutdown), skipped (no usable secret or record).",
    ["outcome"],
)
UPSTREAM_FIRST_TOKEN = Histogram(
    "deerflow_upstream_first_token_seconds",
    "From a request to the model (or graph) to its first token.",
    ["source"],
    buckets=LATENCY_BUCKETS,
)


class FirstToken:
    """Time from its creation to the first `seen()`, for one upstream request."""

    __slots__ = ("_source", "_started")

    def __init__(self, source: str) -> None:
        self._source = source
        self._started: float | None = time.perf_counter()

    def seen(self) -> None:
        """Observe the time to the first token, once."""
        if self._started is not None:
            UPSTREAM_FIRST_TOKEN.labels(self._source).observe(time.perf_counter() - self._started)
            self._started = None


def exposition() -> bytes:
    """Return every metric in Prometheus' text format, summed over workers if several."""
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest(REGISTRY)
    # A worker killed outright (SIGKILL, the OOM killer) never ran its shutdown: its live
    # gauge would count its streams forever, and a supervisor may not start another worker.
    clear_dead_workers()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")


def clear_dead_workers() -> None:
    """Drop the live gauges of workers that are gone (a crash skips `worker_exited`)."""
    directory = os.environ.get(MULTIPROC_DIR)
    if not directory:
        return
    for path in Path(directory).glob("gauge_live*.db"):
        match = _LIVE_FILE.fullmatch(path.name)
        if match and not _alive(int(match[1])):
            multiprocess.mark_process_dead(int(match[1]), directory)  # type: ignore[no-untyped-call]


def worker_exited() -> None:
    """Drop this worker's live gauges (its counters stay in the totals)."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
