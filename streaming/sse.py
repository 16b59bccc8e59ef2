"""Server-Sent Events: frame encoding and response headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from streaming.sources.base import Event

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SESSION_HEADER = "X-Stream-Session-Id"

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_line_breaks = re.compile(r"\r\n|\r|\n")


def stream_headers(session_id: str) -> dict[str, str]:
    """Return the headers of an event stream response."""
    return {
        "Content-Type": CONTENT_TYPE,
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        SESSION_HEADER: session_id,
    }


def encode_json(data: Mapping[str, Any]) -> str:
    """Encode `data` as one line of compact JSON, not ASCII-escaped."""
    return _json.encode(data)


def _field(name: str, value: str) -> str:
    # `id` and `event` are single-line fields: a line break would start a new field.
    return f"{name}: {_line_breaks.sub('', value)}\n"


def _data_lines(text: str) -> str:
    # One `data:` line per line of text; a standard parser joins them with "\n".
    return "".join(f"data: {line}\n" for line in _line_breaks.split(text))


def encode_event(event_id: int, event: Event) -> bytes:
    """Encode one event as a frame: `id`, `event` (when named), `data`, blank line."""
    head = f"id: {event_id}\n"
    if event.name:
        head += _field("event", event.name)
    if isinstance(event.data, str):
        return (head + _data_lines(event.data) + "\n").encode()
    # Compact JSON never contains a raw line break, so it is always one data line.
    return (f"{head}data: {_json.encode(event.data)}\n\n").encode()


def encode_events(events: Iterable[tuple[int, Event]]) -> bytes:
    """Encode frames that are ready together as one chunk."""
    return b"".join(encode_event(event_id, event) for event_id, event in events)


def encode_comment(text: str) -> bytes:
    """Encode a comment frame, which clients ignore (heartbeats, the opening frame)."""
    return "".join(f": {line}\n" for line in _line_breaks.split(text)).encode() + b"\n"
