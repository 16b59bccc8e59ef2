"""The numbered events of one run, kept for the readers that follow or replay it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from streaming.conf import conf
from streaming.models import EndReason
from streaming.sources.base import Event

Numbered = tuple[int, Event]


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment frame: clients ignore it, proxies see bytes flow."""

    text: str


OPENED = Comment("stream open")
PING = Comment("ping")

# What a reader yields to a transport: a comment, or events that are ready together.
Output = Comment | list[Numbered]


class EventLogExpiredError(Exception):
    """The events after the requested id are no longer kept."""

    def __init__(self, after: int, first_kept: int) -> None:
        super().__init__(
            f"Events after id {after} are no longer kept; the oldest kept is {first_kept}."
        )
        self.after = after
        self.first_kept = first_kept


class Followable(Protocol):
    """Something a transport can read a stream from: a live run or a kept log."""

    @property
    def outcome(self) -> EndReason | None:
        """How the stream ended, once it has."""
        ...

    def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield the events after `after`, then live ones, with pings, until the end."""
        ...


class EventLog:
    """Number events from 1 and let readers follow them from any id still kept.

    The log keeps the last `maxlen` events. Readers that follow it hold their place: while
    the slowest is `maxlen` events behind, `full()` is true and the producer waits in
    `room()`, so an attached reader never loses an event. With no reader attached the
    oldest events are dropped (a later resume from them gets EventLogExpiredError).
    """

    def __init__(self, *, maxlen: int) -> None:
        self._events: deque[Numbered] = deque(maxlen=maxlen)
        self._maxlen = maxlen
        self._waiters: list[asyncio.Future[None]] = []
        self._cursors: dict[object, int] = {}
        self._room: asyncio.Future[None] | None = None
        self.last_id = 0
        self.closed = False
        self.outcome: EndReason | None = None

    def hold(self, reader: object, cursor: int) -> None:
        """Hold `reader`'s place at `cursor`: events after it are kept until it reads them."""
        self._cursors[reader] = cursor
        self._wake_room()

    def release(self, reader: object) -> None:
        """Stop holding `reader`'s place."""
        self._cursors.pop(reader, None)
        self._wake_room()

    def full(self) -> bool:
        """Return whether the slowest reader is as far behind as the log keeps."""
        return bool(self._cursors) and self.last_id - min(self._cursors.values()) >= self._maxlen

    async def room(self) -> None:
        """Wait until the slowest reader has caught up enough for another event."""
        while self.full():
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)

    def append(self, event: Event) -> int:
        """Add `event` with the next id and wake the readers; return its id."""
        self.last_id += 1
        self._events.append((self.last_id, event))
        self._wake()
        return self.last_id

    def close(self, outcome: EndReason) -> None:
        """Mark the log complete: no event follows."""
        self.closed = True
        self.outcome = outcome
        self._wake()

    def check(self, after: int) -> None:
        """Raise EventLogExpiredError if events after `after` are no longer all kept."""
        first_kept = self._events[0][0] if self._events else self.last_id + 1
        if after + 1 < first_kept:
            raise EventLogExpiredError(after, first_kept)

    def after(self, event_id: int) -> list[Numbered]:
        """Return the events with ids above `event_id`."""
        if event_id >= self.last_id:
            return []
        self.check(event_id)
        start = event_id + 1 - self._events[0][0]
        if start == 0:
            return list(self._events)
        return [self._events[i] for i in range(start, len(self._events))]

    async def wait(self, event_id: int) -> None:
        """Wait until an event above `event_id` is added or the log closes."""
        if event_id < self.last_id or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield an opening comment, the events after `after` as they come, pings in silence."""
        reader = object()
        self.hold(reader, after)
        try:
            yield OPENED
            cursor = after
            heartbeat = conf.heartbeat_seconds
            while True:
                batch = self.after(cursor)
                if batch:
                    yield batch
                    cursor = batch[-1][0]
                    self.hold(reader, cursor)
                    continue
                if self.closed:
                    return
                try:
                    async with asyncio.timeout(heartbeat):
                        await self.wait(cursor)
                except TimeoutError:
                    yield PING
        finally:
            self.release(reader)

    def _wake_room(self) -> None:
        if self._room is not None and not self._room.done() and not self.full():
            self._room.set_result(None)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
