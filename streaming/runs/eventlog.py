"""The numbered events of one run, kept for the readers that follow or replay it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator
from itertools import islice
from typing import TypeVar

from streaming.conf import conf
from streaming.models import EndReason
from streaming.runs.frames import Frame, event_text, frame_size
from streaming.runs.readers import OPENED, PING, Heartbeat, Output
from streaming.runs.snapshot import RunSnapshot
from streaming.sources.base import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")


# A reader whose next event comes this soon after its last batch went out is reading a
# stream that produces faster than one event per loop pass. It lets the events produced in
# the next few passes join its batch: one write, one wake for many events (bounded).
BACK_TO_BACK_SECONDS = 0.001
GATHER_PASSES = 32
GATHER_EVENTS = 64


class EventLogExpiredError(Exception):
    """The events after the requested id are no longer kept."""

    def __init__(self, after: int, first_kept: int) -> None:
        super().__init__(
            f"Events after id {after} are no longer kept; the oldest kept is {first_kept}."
        )
        self.after = after
        self.first_kept = first_kept


class EventLog:
    """Number events from 1 and let readers follow them from any id still kept.

    The log keeps the last `max_events` events, and no more of them than `max_bytes` of
    encoded data (the newest event always). Readers that follow it hold their place: while
    the slowest is `max_events` events or `max_bytes` behind, `full()` is true and the
    producer waits in `room()`, so an attached reader never loses an event, and a stream
    whose client stops reading holds at most that much. With no reader attached the oldest
    events are dropped (a later resume from them gets EventLogExpiredError).
    """

    def __init__(self, *, max_events: int, max_bytes: int) -> None:
        # An event is kept as its name, its encoded data, whether that is JSON, and where it
        # ends in the log's byte count, in deques, its id implied by its place: no object
        # per event that the garbage collector tracks, so the events of hundreds of live
        # streams add nothing to each full collection, which pauses every stream.
        self._names: deque[str] = deque()
        self._texts: deque[str] = deque()
        self._is_json: deque[bool] = deque()
        self._ends: deque[int] = deque()  # byte count at the end of each kept event
        self._end = 0  # byte count at the end of the newest event
        self._dropped = 0  # byte count at the end of the last dropped event
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._waiters: list[asyncio.Future[bool]] = []
        self._cursors: dict[object, int] = {}
        self._room: asyncio.Future[None] | None = None
        self.last_id = 0
        self.snapshot = RunSnapshot()
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

    @property
    def kept_bytes(self) -> int:
        """The encoded size of the events kept."""
        return self._end - self._dropped

    def full(self) -> bool:
        """Return whether the slowest reader is as far behind as the log keeps."""
        # Asked after every event. A reader's unread events are always kept (one that
        # attached after its events were dropped ends at once), so while what is kept is
        # short of both bounds no reader can be that far behind: no need to find the slowest.
        if not self._cursors or (
            len(self._names) < self._max_events and self.kept_bytes < self._max_bytes
        ):
            return False
        slowest = min(self._cursors.values())
        if self.last_id - slowest >= self._max_events:
            return True
        return self._unread_bytes(slowest) >= self._max_bytes

    def _beyond_bounds(self, events: int) -> bool:
        return events > self._max_events or self.kept_bytes > self._max_bytes

    def _unread_bytes(self, cursor: int) -> int:
        if cursor >= self.last_id:
            return 0
        first = self.last_id - len(self._ends) + 1
        read_end = self._ends[cursor - first] if cursor >= first else self._dropped
        return self._end - read_end

    async def room(self) -> None:
        """Wait until the slowest reader has caught up enough for another event."""
        while self.full():
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)

    def append(self, event: Event) -> None:
        """Add `event` with the next id and wake the readers."""
        text, is_json = event_text(event)
        self.last_id += 1
        self._names.append(event.name)
        self._texts.append(text)
        self._is_json.append(is_json)
        self._end += frame_size(event.name, text)
        self._ends.append(self._end)
        self.snapshot.fold(self.last_id, event)
        if self._beyond_bounds(len(self._names)):
            self._drop_oldest()
        self._wake()

    def newest(self) -> Frame:
        """Return the newest event (the log holds one)."""
        return Frame(self.last_id, self._names[-1], self._texts[-1], self._is_json[-1])

    def _drop_oldest(self) -> None:
        """Drop the oldest events beyond the bounds, never one a reader has yet to read."""
        held = min(self._cursors.values(), default=self.last_id)
        first = self.last_id - len(self._names) + 1
        while len(self._names) > 1 and first <= held and self._beyond_bounds(len(self._names)):
            self._names.popleft()
            self._texts.popleft()
            self._is_json.popleft()
            self._dropped = self._ends.popleft()
            first += 1

    def close(self, outcome: EndReason) -> None:
        """Mark the log complete: no event follows."""
        self.closed = True
        self.outcome = outcome
        self._wake()

    @property
    def first_kept(self) -> int:
        """The id of the oldest event kept (one past the last when none is)."""
        return self.last_id - len(self._names) + 1

    def check(self, after: int) -> None:
        """Raise EventLogExpiredError if events after `after` are no longer all kept."""
        if after + 1 < (first_kept := self.first_kept):
            raise EventLogExpiredError(after, first_kept)

    def after(self, event_id: int) -> list[Frame]:
        """Return the events with ids above `event_id`."""
        count = self.last_id - event_id
        if count <= 0:
            return []
        self.check(event_id)
        if count == 1:  # A reader that keeps up: the newest event alone.
            return [self.newest()]
        if count == len(self._names):
            names, texts, is_json = list(self._names), list(self._texts), list(self._is_json)
        else:  # Readers mostly ask for the last few: take them from the right end.
            names = _last(self._names, count)
            texts, is_json = _last(self._texts, count), _last(self._is_json, count)
        ids = range(event_id + 1, self.last_id + 1)
        return list(map(Frame, ids, names, texts, is_json))

    async def wait(self, event_id: int) -> None:
        """Wait until an event above `event_id` is added or the log closes."""
        if event_id < self.last_id or self.closed:
            return
        await self._next(None)

    async def _next(self, heartbeat: Heartbeat | None) -> bool:
        """Wait for the next event or the close; return False if `heartbeat` is due first."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if heartbeat is not None:
            heartbeat.watch(waiter)
        try:
            pinged = await waiter
        except BaseException:
            if not waiter.done():
                waiter.cancel()
            self._discard(waiter)
            raise
        finally:
            if heartbeat is not None:
                heartbeat.waiter = None
        if pinged:
            self._discard(waiter)  # _wake let go of the waiters it woke, not of this one
        return not pinged

    async def follow(
        self, *, after: int = 0, reader: object | None = None
    ) -> AsyncGenerator[Output, None]:
        """Yield an opening comment, the events after `after` as they come, pings in silence.

        The reader's place is held (under `reader`, a token the caller may already hold).
        """
        reader = reader or object()
        self.hold(reader, after)
        loop = asyncio.get_running_loop()
        heartbeat = Heartbeat(loop, conf.heartbeat_seconds)
        try:
            yield OPENED
            cursor = after
            sent = -BACK_TO_BACK_SECONDS  # when the last batch of events went out
            heartbeat.quiet_since = loop.time()
            while True:
                if cursor < self.last_id:
                    if loop.time() - sent < BACK_TO_BACK_SECONDS:
                        await self._gather(cursor)
                    try:
                        batch = self.after(cursor)
                    except EventLogExpiredError as exc:
                        # Dropped before this reader held its place (it attached late): end
                        # its output; resuming from `cursor` answers 410 with this detail.
                        logger.warning("A reader fell behind the kept events: %s", exc)
                        return
                    yield batch
                    cursor = batch[-1].id
                    self.hold(reader, cursor)
                    sent = heartbeat.quiet_since = loop.time()
                    continue
                if self.closed:
                    return
                if not await self._next(heartbeat):
                    yield PING
                    heartbeat.quiet_since = loop.time()
        finally:
            heartbeat.cancel()
            self.release(reader)

    async def _gather(self, cursor: int) -> None:
        """Let events produced in the next loop passes join the batch after `cursor`."""
        for _ in range(GATHER_PASSES):
            if self.last_id - cursor >= GATHER_EVENTS or self.closed:
                return
            seen = self.last_id
            await asyncio.sleep(0)
            if self.last_id == seen:
                return  # The producer paused: send what is ready.

    def _wake_room(self) -> None:
        if self._room is not None and not self._room.done() and not self.full():
            self._room.set_result(None)

    def _wake(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(False)

    def _discard(self, waiter: asyncio.Future[bool]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)


def _last(items: deque[T], count: int) -> list[T]:
    last = list(islice(reversed(items), count))
    last.reverse()
    return last
