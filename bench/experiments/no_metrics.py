"""The production application with every Prometheus metric replaced by a no-op (bench only).

`bench/metrics.sh` runs it beside `project.asgi:application` to measure what the metrics
cost, in the same run. The log lines and the context variable stay.
"""

from __future__ import annotations

from typing import Any

from project.asgi import application  # noqa: F401  (what the server runs)
from streaming.observe import metrics


class _NoMetric:
    def labels(self, *args: Any) -> _NoMetric:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


for _name in (
    "STREAMS_LIVE",
    "STREAMS_ENDED",
    "STREAM_DURATION",
    "FIRST_EVENT",
    "EVENTS_SENT",
    "RESUMES",
    "CANCEL_LATENCY",
    "REFUSALS",
    "SOURCE_ERRORS",
    "UPSTREAM_FIRST_TOKEN",
):
    setattr(metrics, _name, _NoMetric())
