"""The stall watchdog: silence ends a run, events and time spent waiting for readers do not."""

from __future__ import annotations

import asyncio

from streaming.runs.watchdog import StallWatchdog


async def test_silence_calls_it_once() -> None:
    stalled = asyncio.Event()
    calls: list[None] = []

    def on_stall() -> None:
        calls.append(None)
        stalled.set()

    with StallWatchdog(0.05, on_stall, name="Stream t") as watchdog:
        await stalled.wait()
        await asyncio.sleep(0.1)  # long enough to fire again, were it to

    assert watchdog.stalled
    assert calls == [None]


async def test_events_feed_it_and_waiting_for_readers_does_not_count() -> None:
    calls: list[None] = []
    with StallWatchdog(1.0, lambda: calls.append(None), name="Stream t") as watchdog:
        # 1.5 s of events, each well within the bound of the one before.
        for _ in range(15):
            await asyncio.sleep(0.1)
            watchdog.fed()
        with watchdog.paused():  # the run waits for a slow reader, not for its source
            await asyncio.sleep(1.5)
    assert calls == []
    assert not watchdog.stalled


async def test_leaving_it_stops_it() -> None:
    calls: list[None] = []
    with StallWatchdog(0.05, lambda: calls.append(None), name="Stream t"):
        pass
    await asyncio.sleep(0.2)
    assert calls == []
