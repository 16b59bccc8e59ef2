"""Events as the event log keeps them: encoded once, when produced, for every reader.

A chat event's data is encoded to compact JSON when it enters the log, not once per reader
and transport: the SSE encoder, the WebSocket consumer and the Redis mirror all use that
text as it is, and its length is what the log's byte bound counts.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from json import encoder as json_encoder
from typing import Any, NamedTuple

from streaming.runs.endings import FinalFrame
from streaming.sources.base import Event, SourceError

logger = logging.getLogger("streaming.runs.run")  # a run's failures, logged as its own

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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


encode_json: Callable[[Any], str] = _json_encoder()
"""Encode a JSON value as one line of compact JSON, not ASCII-escaped."""


class Frame(NamedTuple):
    """One numbered event: its name, and its data as text.

    `text` is the data's compact JSON when `is_json`, else a prose piece's own text.
    """

    id: int
    name: str
    text: str
    is_json: bool

    @property
    def size(self) -> int:
        """What the frame counts for against the log's byte bound (characters)."""
        return frame_size(self.name, self.text)


def frame_size(name: str, text: str) -> int:
    """Return the size a frame with this name and text counts for."""
    return len(name) + len(text) + FRAME_OVERHEAD


# The fields around the data on the wire (`id: n`, `event: `, `data: `, line breaks).
FRAME_OVERHEAD = 24


def event_text(event: Event) -> tuple[str, bool]:
    """Return an event's data as text, and whether that text is JSON."""
    if isinstance(event.data, str):
        return event.data, False
    return encode_json(event.data), True


def to_frame(event_id: int, event: Event) -> Frame:
    """Encode `event` as the frame numbered `event_id`."""
    return Frame(event_id, event.name, *event_text(event))


def replace_surrogates(text: str) -> str:
    """Return `text` with each lone surrogate replaced by U+FFFD, as a decoder would show it.

    A lone surrogate (an upstream's broken escape) has no UTF-8 form; the transports send
    U+FFFD rather than break the stream.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def utf8_safe(text: str) -> str:
    """Return `text` if it has a UTF-8 form, else `replace_surrogates(text)`."""
    if text.isascii():  # O(1) in CPython: the common case costs nothing.
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return replace_surrogates(text)
    return text


def json_data(frame: Frame) -> str:
    """Return the frame's data as JSON: its own, or `{"text": …}` for a prose piece."""
    return frame.text if frame.is_json else encode_json({"text": frame.text})


def final_event(frame: FinalFrame, thread_id: str | None) -> Event:
    """Return the `error` event a stream ends with (a chat stream's names its thread)."""
    data = {"error": frame.message, "reason": frame.reason}
    return Event("error", data if thread_id is None else {"thread_id": thread_id, **data})


def failure(session_id: uuid.UUID, exc: Exception) -> tuple[str, str | None]:
    """Log a run's failure; return its internal detail and, for a SourceError, the public
    text of its `error` frame."""
    error = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    logger.error("Stream %s failed: %s", session_id, error, exc_info=exc)
    return error, exc.public_message if isinstance(exc, SourceError) else None
