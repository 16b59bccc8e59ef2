"""Server-Sent Events: frame encoding and response headers."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterable

from streaming.observe.context import StreamTags
from streaming.runs.frames import Frame, replace_surrogates
from streaming.runs.readers import Followable
from streaming.transports.pump import encoded

CONTENT_TYPE = "text/event-stream; charset=utf-8"
SESSION_HEADER = "X-Stream-Session-Id"

_line_breaks = re.compile(r"\r\n|\r|\n")
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


def _frame(frame: Frame) -> str:
    head = f"id: {frame.id}\n{_event_line(frame.name)}" if frame.name else f"id: {frame.id}\n"
    if frame.is_json:
        # Compact JSON never contains a raw line break, so it is always one data line.
        return f"{head}data: {frame.text}\n\n"
    return f"{head}{_data_lines(frame.text)}\n"


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return replace_surrogates(text).encode()


def encode_frames(frames: Iterable[Frame]) -> bytes:
    """Encode frames that are ready together as one chunk: per frame `id`, `event` (when
    named), `data`, blank line."""
    return _utf8("".join([_frame(frame) for frame in frames]))


def encode_comment(text: str) -> bytes:
    """Encode a comment frame, which clients ignore (heartbeats, the opening frame)."""
    return "".join(f": {line}\n" for line in _line_breaks.split(text)).encode() + b"\n"


def event_stream(
    stream: Followable, *, tags: StreamTags, after: int = 0
) -> AsyncGenerator[bytes, None]:
    """Return the body of an event stream: `stream`'s outputs after `after`, encoded."""
    return encoded(stream, tags=tags, after=after, comment=_comment_chunks, frames=_frame_chunks)


def _comment_chunks(text: str) -> list[bytes]:
    return [encode_comment(text)]


def _frame_chunks(frames: list[Frame]) -> list[bytes]:
    return [encode_frames(frames)]
