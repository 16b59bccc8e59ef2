"""What readers of a stream get, and what they need: outputs, heartbeats, their connection."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from streaming.runs.endings import EndReason
from streaming.runs.frames import Frame


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment frame: clients ignore it, proxies see bytes flow."""

    text: str


OPENED = Comment("stream open")
PING = Comment("ping")

# What a reader yields to a transport: a comment, or events that are ready together.
Output = Comment | list[Frame]


class Followable(Protocol):
    """Something a transport can read a stream from: a live run or a kept log."""

    @property
    def outcome(self) -> EndReason | None:
        """How the stream ended, once it has."""
        ...

    def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield the events after `after`, then live ones, with pings, until the end."""
        ...


class ReaderConnection(Protocol):
    """The connection a reader sends on, as far as the run needs to know it."""

    @property
    def stalled(self) -> bool:
        """Whether the transport dropped it for leaving sent bytes unread."""
        ...


# Set by the transport for each connection (transports/backpressure.py), so that a run
# whose last reader's client was dropped for not reading records `slow_client`.
reader_connection: contextvars.ContextVar[ReaderConnection | None] = contextvars.ContextVar(
    "streaming_reader_connection", default=None
)


def reader_gone(*, shutting_down: bool) -> EndReason:
    """Return why the last reader of a run went away (read in the reader's context)."""
    if shutting_down:
        return EndReason.SERVER_SHUTDOWN
    connection = reader_connection.get()
    if connection is not None and connection.stalled:
        return EndReason.SLOW_CLIENT
    return EndReason.CLIENT_DISCONNECT


class Heartbeat:
    """Wake a waiting reader with `True` after `interval` seconds without output.

    One timer per reader, re-armed only when it fires: a reader that waits once per event
    does not create and cancel a timer per event.
    """

    __slots__ = ("_handle", "_interval", "_loop", "quiet_since", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self.quiet_since = loop.time()  # when the reader last sent something
        self.waiter: asyncio.Future[bool] | None = None

    def watch(self, waiter: asyncio.Future[bool]) -> None:
        """Resolve `waiter` with True if the reader stays quiet for the interval."""
        self.waiter = waiter
        if self._handle is None:
            self._handle = self._loop.call_at(self.quiet_since + self._interval, self._due)

    def cancel(self) -> None:
        """Stop the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _due(self) -> None:
        self._handle = None
        due = self.quiet_since + self._interval
        if self._loop.time() < due:  # The reader sent something since: not quiet yet.
            self._handle = self._loop.call_at(due, self._due)
        elif self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)
