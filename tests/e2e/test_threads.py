"""A live stream holds no OS thread: the server's thread count does not grow with its streams.

Counted from the kernel (`/proc/<pid>/status`) on a real server, as in production. Before
the body was handed to the ASGI layer (`streaming/transports/handoff.py`), each live SSE
stream kept the thread Django's handler starts for its request: 110 streams, 110 threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.support.live import SERVERS, LiveServer, migrate, serve, server_env

QUESTION = {"messages": [{"role": "user", "content": "How do deer survive winter?"}]}
# How long the thread count may take to settle after a burst (threads of finished
# requests being joined); far above what it takes, and only spent when a stream holds one.
SETTLE_SECONDS = 30.0


def threads(server: LiveServer) -> int:
    """Return the number of OS threads of the server process."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("Threads:")]
    return int(line.split()[1])


async def settled_at_most(server: LiveServer, limit: int) -> int:
    """Return the thread count once it is at most `limit`, or the last count after a while.

    Threads of requests that have finished are joined by the handler before it returns,
    but their exit is the kernel's: poll it (bounded), there is nothing to await.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while (count := threads(server)) > limit and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # The kernel's count: nothing to await.
    return count


async def settled(server: LiveServer) -> int:
    """Return the thread count once it has not changed for half a second (bounded)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    count, since = threads(server), time.monotonic()
    while time.monotonic() - since < 0.5 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if (now := threads(server)) != count:
            count, since = now, time.monotonic()
    return count


@contextlib.asynccontextmanager
async def live_streams(client: httpx.AsyncClient, count: int) -> AsyncIterator[list[str]]:
    """Open `count` chat streams and read their opening comment; keep them open in the block."""
    async with contextlib.AsyncExitStack() as stack:
        sessions, readers = [], []
        for _ in range(count):
            response = await stack.enter_async_context(
                client.stream("POST", "/api/chat/stream", json=QUESTION)
            )
            assert response.status_code == 200
            # Kept until the block ends: an abandoned reader closes its connection.
            readers.append(reader := cast(AsyncGenerator[bytes, None], response.aiter_bytes()))
            stack.push_async_callback(reader.aclose)
            assert (await anext(reader)).startswith(b": stream open\n\n")
            sessions.append(response.headers["x-stream-session-id"])
        yield sessions


@pytest.mark.parametrize("server_name", SERVERS)
async def test_live_streams_hold_no_thread(tmp_path: Path, server_name: str) -> None:
    # The demo pauses ten minutes before each event: every stream stays live and idle.
    env = server_env(tmp_path, STREAM_DEMO_DELAY_MS="600000", STREAM_MAX_STREAMS_PER_CLIENT="1000")
    migrate(env)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    with serve(env, tmp_path / f"{server_name}.log", server_name) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            # A first burst lets every lazily started, bounded pool reach its size.
            async with live_streams(client, 110):
                pass
            idle = await settled(server)
            async with live_streams(client, 10) as ten:
                with_10 = await settled_at_most(server, idle)
                async with live_streams(client, 100) as hundred:
                    with_110 = await settled_at_most(server, idle)
                    record = (await client.get(f"/api/sessions/{hundred[-1]}")).json()
            first = (await client.get(f"/api/sessions/{ten[0]}")).json()

    assert record["status"] == "running", record  # counted while the streams were live
    assert first["end_reason"] == "client_disconnect"
    assert with_10 <= idle
    assert with_110 <= idle
