"""The stream a log line belongs to: a context variable, and the filter that reads it.

A run sets `current_stream` in its own context when it starts; the transports set it where
they read a stream. `StreamContextFilter`, on the log handler, copies it onto every record,
so no call site names the session by hand for the formatter to find it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamTags:
    """What identifies a stream in logs, metrics and traces."""

    session_id: str
    thread_id: str = ""
    kind: str = ""
    transport: str = ""
    source: str = ""


current_stream: ContextVar[StreamTags | None] = ContextVar("current_stream", default=None)

# The record attributes the filter sets, in the order a formatter shows them.
FIELDS = ("session_id", "thread_id", "kind")


class StreamContextFilter(logging.Filter):
    """Copy the current stream's session id, thread id and kind onto each log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record (never drop it)."""
        tags = current_stream.get()
        for field in FIELDS:
            setattr(record, field, getattr(tags, field) if tags is not None else None)
        return True
