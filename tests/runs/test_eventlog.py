"""The event log: ids, what it keeps (by count and by size), and readers holding their place."""

from __future__ import annotations

import asyncio

import pytest

from streaming.models import EndReason
from streaming.runs.eventlog import EventLog, EventLogExpiredError
from streaming.runs.frames import to_frame
from streaming.runs.readers import OPENED
from streaming.sources.base import Event


def test_keeps_the_last_events_and_says_which_are_gone() -> None:
    log = EventLog(max_events=3, max_bytes=1 << 20)
    for i in range(10):
        log.append(Event("e", str(i)))

    assert [(f.id, f.text) for f in log.after(7)] == [(8, "7"), (9, "8"), (10, "9")]
    with pytest.raises(EventLogExpiredError, match="oldest kept is 8"):
        log.after(2)


async def test_a_reader_that_attaches_after_its_events_were_dropped_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = EventLog(max_events=3, max_bytes=1 << 20)
    for i in range(10):  # nobody holds a place: the oldest are dropped
        log.append(Event("e", str(i)))
    log.close(EndReason.NONE)

    outputs = [output async for output in log.follow(after=0)]

    assert outputs == [OPENED]
    assert "oldest kept is 8" in caplog.text


async def test_a_reader_holds_its_place_so_nothing_is_dropped_for_it() -> None:
    log = EventLog(max_events=3, max_bytes=1 << 20)
    reader = log.follow(after=0)
    assert await anext(reader) == OPENED  # the reader now holds its place at 0
    for i in range(3):
        log.append(Event("e", str(i)))

    assert log.full()  # the producer would wait in room()
    batch = await anext(reader)
    assert isinstance(batch, list)
    assert [frame.id for frame in batch] == [1, 2, 3]
    # The batch counts as delivered when the reader comes back for more: room frees up.
    coming_back = asyncio.ensure_future(anext(reader))
    await asyncio.wait_for(log.room(), 1)
    log.append(Event("e", "3"))
    following = await asyncio.wait_for(coming_back, 1)
    assert isinstance(following, list)
    assert [frame.id for frame in following] == [4]
    await reader.aclose()


def test_keeps_no_more_than_its_byte_bound_of_read_events() -> None:
    size = to_frame(1, Event("e", "x" * 100)).size
    log = EventLog(max_events=1000, max_bytes=size * 5)
    for _ in range(50):  # nobody holds a place
        log.append(Event("e", "x" * 100))
        assert log.kept_bytes <= size * 5

    assert [f.id for f in log.after(45)] == [46, 47, 48, 49, 50]
    with pytest.raises(EventLogExpiredError, match="oldest kept is 46"):
        log.after(44)


def test_an_event_larger_than_the_bound_is_still_kept() -> None:
    log = EventLog(max_events=1000, max_bytes=10)
    log.append(Event("e", "small"))
    log.append(Event("e", "y" * 1000))

    assert [f.text for f in log.after(1)] == ["y" * 1000]


async def test_a_reader_that_stops_reading_holds_at_most_the_byte_bound() -> None:
    size = to_frame(1, Event("e", "x" * 1000)).size
    log = EventLog(max_events=10_000, max_bytes=size * 8)
    reader = log.follow(after=0)
    assert await anext(reader) == OPENED  # holds its place at 0, then reads nothing

    produced = 0
    while not log.full():
        log.append(Event("e", "x" * 1000))
        produced += 1

    assert produced == 8  # the producer now waits in room(): memory stays bounded
    assert log.kept_bytes == size * 8
    assert [frame.id for frame in log.after(0)] == list(range(1, 9))  # nothing lost
    room = asyncio.ensure_future(log.room())
    batch = await anext(reader)  # it reads all eight
    assert isinstance(batch, list)
    assert len(batch) == 8
    coming_back = asyncio.ensure_future(anext(reader))
    await asyncio.wait_for(room, 1)  # room again once the batch is delivered
    coming_back.cancel()
    with pytest.raises(asyncio.CancelledError):
        await coming_back


def test_chat_data_is_encoded_once_as_compact_json() -> None:
    log = EventLog(max_events=10, max_bytes=1 << 20)
    log.append(Event("message_chunk", {"content": "héllo", "n": [1, 2]}))
    frame = log.newest()

    assert frame == (1, "message_chunk", '{"content":"héllo","n":[1,2]}', True)
    assert log.after(0) == [frame]
