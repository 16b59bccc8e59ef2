"""What one live stream keeps for the garbage collector: tracked objects per stream, by type.

    bash -c 'source bench/sut.sh && env "${SUT_ENV[@]}" \\
        .venv/bin/python -m bench.experiments.census'

Opens STREAMS (500) live streams through `project.asgi:application` in process (the
synthetic source, one event a minute, so every stream stays live and idle, as in S5),
waits until each has sent its opening frame, collects, and counts the objects the
collector tracks against the count before. Every full collection walks all of them, and
with thousands of live streams its pause is what makes heartbeats late (S5).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

STREAMS = int(os.environ.get("STREAMS", "500"))
TOP = int(os.environ.get("TOP", "25"))
BODY = json.dumps({"messages": [{"role": "user", "content": "census"}], "n": 5, "delay_ms": 60_000})


async def live_stream(app: Any, opened: asyncio.Future[None], leave: asyncio.Event) -> None:
    """Serve one stream until `leave` is set; resolve `opened` at its first body bytes."""
    from bench.experiments.admission import SCOPE

    body = BODY.encode()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body") and not opened.done():
            opened.set_result(None)

    headers = [h for h in SCOPE["headers"] if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await app({**SCOPE, "headers": headers}, receive, send)


def census() -> collections.Counter[str]:
    """Count the tracked objects by type."""
    return collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())


async def main() -> None:
    from bench.experiments.admission import one
    from project.asgi import application

    for _ in range(20):  # warm up: imports, caches, the records thread
        await one(application)
    gc.collect()
    before = census()
    loop = asyncio.get_running_loop()
    leave = asyncio.Event()
    opened = [loop.create_future() for _ in range(STREAMS)]
    streams = [asyncio.create_task(live_stream(application, f, leave)) for f in opened]
    await asyncio.gather(*opened)
    gc.collect()
    kept = census() - before
    print(f"{sum(kept.values()) / STREAMS:.1f} tracked objects per live stream ({STREAMS} live)")
    for name, count in kept.most_common(TOP):
        print(f"{count / STREAMS:8.2f}  {name}")
    leave.set()
    await asyncio.gather(*streams)


if __name__ == "__main__":
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    asyncio.run(main())
