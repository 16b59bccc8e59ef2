"""CPU per paced event through the run, its log and the SSE body, in process (no server).

    bash -c 'source bench/sut.sh && env "${SUT_ENV[@]}" taskset -c 0 \\
        .venv/bin/python -m bench.experiments.pipeline'

STREAMS streams (200) of N events (200), one every 5 ms, each a `StreamRun` read by the
SSE body as `serve_bodies` reads it, into a `send` that never waits (a server whose socket
always has room); the session rows are not written (`_finish` only closes the log). Beside
it, the same source, log and encoder in a single task, as a FastAPI-style generator would
send them: the floor for this source and encoder. Rounds alternate; prints the process CPU
per event of each, and the medians. What is left between them is the run's second task per
stream and the layers between its log and the socket.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

N = int(os.environ.get("N", "200"))
STREAMS = int(os.environ.get("STREAMS", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DELAY = 0.005
DATA = {"thread_id": "t", "agent": "coder", "id": "run-t", "role": "assistant", "content": " fox"}


async def source(n: int) -> AsyncGenerator[Any, None]:
    """`n` message chunks on an absolute schedule, as the synthetic source sends them."""
    from streaming.sources.base import Event

    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + (i + 1) * DELAY - loop.time()))
        yield Event("message_chunk", DATA)


async def send(message: dict[str, Any]) -> None:
    """A server's send whose socket always has room."""


async def through_the_run(n: int) -> None:
    """The production path: a StreamRun, read by the SSE body."""
    from streaming.models import Kind
    from streaming.runs.run import StreamRun
    from streaming.transports.handoff import _send_all
    from streaming.transports.sse import event_stream

    run = StreamRun(session_id=uuid.uuid4(), kind=Kind.CHAT, thread_id="t", events=source(n))

    async def finish(reason: Any, error: str, *, public_error: str | None = None) -> None:
        run._finishing = True
        run.log.close(reason)

    run._finish = finish  # type: ignore[method-assign]
    body = event_stream(run, tags=run.tags)
    first = await anext(body)
    await _send_all(first, body, send)


async def one_task(n: int) -> None:
    """The floor: source, log and encoder in the stream's one task."""
    from streaming.runs.eventlog import EventLog
    from streaming.transports.sse import encode_frames

    log = EventLog(max_events=1000, max_bytes=1 << 20)
    async for event in source(n):
        log.append(event)
        frames = log.after(log.last_id - 1)
        await send({"type": "http.response.body", "body": encode_frames(frames), "more_body": True})


async def main() -> None:
    variants = {"run": through_the_run, "one-task": one_task}
    results: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(ROUNDS):
        order = list(variants.items())
        for name, variant in order if r % 2 == 0 else order[::-1]:
            t0 = time.process_time()
            await asyncio.gather(*(variant(N) for _ in range(STREAMS)))
            cpu = (time.process_time() - t0) / (N * STREAMS) * 1e6
            results[name].append(cpu)
            print(f"round {r + 1} {name}: {cpu:.1f} µs CPU/event")
    for name, xs in results.items():
        print(f"median {name}: {statistics.median(xs):.1f} µs CPU/event")


if __name__ == "__main__":
    import logging

    import django
    import uvloop

    django.setup()
    logging.disable(logging.INFO)
    uvloop.install()
    asyncio.run(main())
