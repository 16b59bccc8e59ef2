"""Server-Sent Events: frame encoding and response headers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from json import encoder as json_encoder
from typing import Any

from streaming.sources.base import Event

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SESSION_HEADER = "X-Stream-Session-Id"

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_line_breaks = re.compile(r"\r\n|\r|\n")


def _json_encoder() -> Callable[[Any], str]:
    # Every event's data goes through here. JSONEncoder.encode builds a new C encoder on
    # each call; this one is built once with the same options (minus the circular-reference
    # check, which only turns a RecursionError into a ValueError): half the cost per event.
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # A Python without the C accelerator.
        return _json.encode
    encode = make(
        None, _json.default, json_encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda data: "".join(encode(data, 0))


_encode_json = _json_encoder()
# "event: <name>\n" per event name: sources use a handful of names over and over.
_event_lines: dict[str, str] = {}
_EVENT_LINES_KEPT = 256


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
    return _encode_json(data)


def _field(name: str, value: str) -> str:
    # `id` and `event` are single-line fields: a line break would start a new field.
    return f"{name}: {_line_breaks.sub('', value)}\n"


def _data_lines(text: str) -> str:
    # One `data:` line per line of text; a standard parser joins them with "\n".
    return "".join(f"data: {line}\n" for line in _line_breaks.split(text))


def _event_line(name: str) -> str:
    line = _event_lines.get(name)
    if line is None:
        line = _field("event", name)
        if len(_event_lines) < _EVENT_LINES_KEPT:
            _event_lines[name] = line
    return line


def _frame(event_id: int, event: Event) -> str:
    head = f"id: {event_id}\n{_event_line(event.name)}" if event.name else f"id: {event_id}\n"
    if isinstance(event.data, str):
        return f"{head}{_data_lines(event.data)}\n"
    # Compact JSON never contains a raw line break, so it is always one data line.
    return f"{head}data: {_encode_json(event.data)}\n\n"


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (an upstream's broken escape) has no UTF-8 form: send U+FFFD,
        # as a decoder would show it, rather than break the stream.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def encode_event(event_id: int, event: Event) -> bytes:
    """Encode one event as a frame: `id`, `event` (when named), `data`, blank line."""
    return _utf8(_frame(event_id, event))


def encode_events(events: Iterable[tuple[int, Event]]) -> bytes:
    """Encode frames that are ready together as one chunk."""
    return _utf8("".join([_frame(event_id, event) for event_id, event in events]))


def encode_comment(text: str) -> bytes:
    """Encode a comment frame, which clients ignore (heartbeats, the opening frame)."""
    return "".join(f": {line}\n" for line in _line_breaks.split(text)).encode() + b"\n"
