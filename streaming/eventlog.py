"""The numbered events of one run, kept for the readers that follow it."""

from __future__ import annotations

import asyncio
from collections import deque

from streaming.sources.base import Event

Numbered = tuple[int, Event]


class EventLogExpiredError(Exception):
    """The events after the requested id are no longer kept."""


class EventLog:
    """Number events from 1 and let readers follow them from any id still kept."""

    def __init__(self, *, maxlen: int) -> None:
        self._events: deque[Numbered] = deque(maxlen=maxlen)
        self._waiters: list[asyncio.Future[None]] = []
        self.last_id = 0
        self.closed = False

    def append(self, event: Event) -> int:
        """Add `event` with the next id and wake the readers; return its id."""
        self.last_id += 1
        self._events.append((self.last_id, event))
        self._wake()
        return self.last_id

    def close(self) -> None:
        """Mark the log complete: no event follows."""
        self.closed = True
        self._wake()

    def after(self, event_id: int) -> list[Numbered]:
        """Return the events with ids above `event_id`."""
        if event_id >= self.last_id:
            return []
        first_kept = self._events[0][0] if self._events else self.last_id + 1
        if event_id + 1 < first_kept:
            raise EventLogExpiredError(event_id)
        start = event_id + 1 - first_kept
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

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
