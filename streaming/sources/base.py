"""What a source is: an async iterator of events for one request."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streaming.api.requests import ChatRequest, ProseRequest


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a stream.

    `name` is the SSE event name (empty for prose text, which deer-flow sends unnamed);
    `data` is a JSON object, or the text of a prose piece.
    """

    name: str
    data: Mapping[str, Any] | str


class SourceError(Exception):
    """A failure of a source that its client may be told about.

    `public_message` says what kind of failure it was, without secrets or internals; the
    guard sends it in the `error` frame. `detail` and the cause (`raise SourceError(...)
    from exc`) stay in the session's internal error text and the log.
    """

    def __init__(self, public_message: str, *, detail: str = "") -> None:
        super().__init__(public_message)
        self.public_message = public_message
        self.detail = detail

    def __str__(self) -> str:
        notes = [self.detail] if self.detail else []
        if (cause := self.__cause__) is not None:
            notes.append(f"from {type(cause).__module__}.{type(cause).__qualname__}: {cause}")
        return f"{self.public_message} ({'; '.join(notes)})" if notes else self.public_message


class ChatSource(Protocol):
    """Produce the workflow stream for one chat request.

    Every iteration must really await (a loop that never yields control blocks every
    stream in the process), and cleanup belongs in `finally`: the guard closes the
    iterator deterministically when the stream ends for any reason.
    """

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Return the events for `request` on `thread_id`."""
        ...


class ProseSource(Protocol):
    """Produce the prose stream for one request (events named "" carrying text)."""

    def stream(self, request: ProseRequest) -> AsyncGenerator[Event, None]:
        """Return the events for `request`."""
        ...
