"""Sources the tests select by dotted path, each recording what happened to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from streaming.api.requests import ChatRequest, ProseRequest
from streaming.sources.base import Event


@dataclass
class Probe:
    """What the sources saw: events produced, whether cleanup ran, a gate to hold them."""

    produced: int = 0
    cleaned: asyncio.Event = field(default_factory=asyncio.Event)
    cleanup_reason: str = ""
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    events: int = 5
    delay: float = 0.0
    hold_at: int = -1  # CountingSource waits for the gate before this event (0-based)


probe = Probe()


def reset_probe(**settings: object) -> Probe:
    """Start a test with a fresh probe."""
    global probe
    probe = Probe(**settings)  # type: ignore[arg-type]
    return probe


def chunk(thread_id: str, text: str, *, finish: str | None = None) -> Event:
    """Return one deer-flow message chunk."""
    data: dict[str, object] = {
        "thread_id": thread_id,
        "agent": "reporter",
        "id": "run-test",
        "role": "assistant",
        "content": text,
    }
    if finish:
        data["finish_reason"] = finish
    return Event("message_chunk", data)


async def _probed(events: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
    try:
        async for event in events:
            probe.produced += 1
            yield event
        probe.cleanup_reason = "complete"
    except asyncio.CancelledError:
        probe.cleanup_reason = "cancelled"
        raise
    except GeneratorExit:
        probe.cleanup_reason = "closed"
        raise
    finally:
        probe.cleaned.set()


class CountingSource:
    """Emit `probe.events` chunks, `probe.delay` seconds apart (holding at `probe.hold_at`)."""

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        async def events() -> AsyncGenerator[Event, None]:
            for i in range(probe.events):
                if i == probe.hold_at:
                    await probe.gate.wait()
                await asyncio.sleep(probe.delay)
                last = i == probe.events - 1
                yield chunk(thread_id, f"t{i} ", finish="stop" if last else None)

        return _probed(events())


class IdleSource:
    """Emit one chunk, then wait on the gate (forever, unless a test opens it)."""

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        async def events() -> AsyncGenerator[Event, None]:
            yield chunk(thread_id, "first ")
            await probe.gate.wait()
            yield chunk(thread_id, "after gate", finish="stop")

        return _probed(events())


class FailingSource:
    """Emit two chunks, then raise with a secret in the message."""

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        async def events() -> AsyncGenerator[Event, None]:
            yield chunk(thread_id, "one ")
            await asyncio.sleep(0)
            yield chunk(thread_id, "two ")
            await asyncio.sleep(0)
            raise RuntimeError("upstream exploded: api_key=sk-SECRET")

        return _probed(events())


class TextSource:
    """Emit the prose prompt back as one piece per line, newlines kept."""

    def stream(self, request: ProseRequest) -> AsyncGenerator[Event, None]:
        async def events() -> AsyncGenerator[Event, None]:
            for piece in request.prompt.splitlines(keepends=True):
                await asyncio.sleep(0)
                yield Event("", piece)

        return _probed(events())


class BulkSource:
    """A chat source that produces BULK_EVENTS chunks of BULK_CHUNK characters (100 MiB) as
    fast as its reader takes them: what a client that stops reading is tested against."""

    BULK_CHUNK = 64 * 1024
    BULK_EVENTS = 1600

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        return self._events(thread_id)

    async def _events(self, thread_id: str) -> AsyncGenerator[Event, None]:
        text = "x" * self.BULK_CHUNK
        for _ in range(self.BULK_EVENTS):
            await asyncio.sleep(0)
            yield chunk(thread_id, text)


class ScriptedSource:
    """A chat source a real server runs, told by the last message what to do: `fail`
    (raise after one chunk), `hang` (one chunk, then wait until stopped), else three chunks."""

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        return self._events(thread_id, str(request.messages[-1].content))

    async def _events(self, thread_id: str, script: str) -> AsyncGenerator[Event, None]:
        yield chunk(thread_id, "first ")
        if script == "fail":
            raise RuntimeError("scripted failure")
        if script == "hang":
            await asyncio.Event().wait()
        yield chunk(thread_id, "second ")
        yield chunk(thread_id, "third", finish="stop")
