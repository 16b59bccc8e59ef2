"""The event log: ids, what it keeps, and a reader that attaches after events were dropped."""

from __future__ import annotations

import asyncio

import pytest

from streaming.eventlog import OPENED, EventLog, EventLogExpiredError
from streaming.models import EndReason
from streaming.sources.base import Event


def test_keeps_the_last_events_and_says_which_are_gone() -> None:
    log = EventLog(maxlen=3)
    for i in range(10):
        log.append(Event("e", str(i)))

    assert [(i, e.data) for i, e in log.after(7)] == [(8, "7"), (9, "8"), (10, "9")]
    with pytest.raises(EventLogExpiredError, match="oldest kept is 8"):
        log.after(2)


async def test_a_reader_that_attaches_after_its_events_were_dropped_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = EventLog(maxlen=3)
    for i in range(10):  # nobody holds a place: the oldest are dropped
        log.append(Event("e", str(i)))
    log.close(EndReason.NONE)

    outputs = [output async for output in log.follow(after=0)]

    assert outputs == [OPENED]
    assert "oldest kept is 8" in caplog.text


async def test_a_reader_holds_its_place_so_nothing_is_dropped_for_it() -> None:
    log = EventLog(maxlen=3)
    reader = log.follow(after=0)
    assert await anext(reader) == OPENED  # the reader now holds its place at 0
    for i in range(3):
        log.append(Event("e", str(i)))

    assert log.full()  # the producer would wait in room()
    batch = await anext(reader)
    assert isinstance(batch, list)
    assert [i for i, _ in batch] == [1, 2, 3]
    # The batch counts as delivered when the reader comes back for more: room frees up.
    coming_back = asyncio.ensure_future(anext(reader))
    await asyncio.wait_for(log.room(), 1)
    log.append(Event("e", "3"))
    following = await asyncio.wait_for(coming_back, 1)
    assert isinstance(following, list)
    assert [i for i, _ in following] == [4]
    await reader.aclose()
