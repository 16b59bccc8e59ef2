"""The admin's live panel on real servers: a running stream counted on its worker, then ended."""

from __future__ import annotations

import socket
import statistics
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import services
from tests.support.accounts import PASSWORD, manage, sign_in
from tests.support.htmlpage import Page, text
from tests.support.live import LiveServer, migrate, serve, server_env, two_workers

PANEL = "/admin/streaming/sessionpanel/"
HANG = {"messages": [{"role": "user", "content": "hang"}]}


def create_superuser(env: dict[str, str]) -> None:
    code = (
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser('boss', password={PASSWORD!r})\n"
    )
    manage(env, "shell", "-c", code)


def worker_of(server: LiveServer) -> str:
    """Return how the panel names the one worker process of `server`."""
    return f"{socket.gethostname()[:88]}:{server.process.pid}"


async def panel(admin: httpx.AsyncClient) -> Page:
    response = await admin.get(PANEL)
    assert response.status_code == 200, response.text
    return Page(response.content)


def live(page: Page) -> dict[str, int]:
    """Return the live streams per worker the panel shows."""
    return {row[0]: int(row[1]) for row in page.table("live-workers") if len(row) > 1}


def ended(page: Page) -> dict[str, int]:
    """Return the non-zero counts of the last hour's endings, by reason."""
    return {row[0]: int(row[2]) for row in page.table("ended-reasons") if row[2] != "0"}


async def open_hanging(
    client: httpx.AsyncClient, stack: AsyncExitStack
) -> tuple[str, AsyncIterator[bytes]]:
    """Open a stream that sends one event and waits; return its session id and the rest.

    Each on a thread of its own (a second run on one thread would supersede the first).
    The rest must be kept: dropping a response's byte iterator closes the connection.
    """
    body = HANG | {"thread_id": f"panel-{uuid.uuid4().hex[:8]}"}
    response = await stack.enter_async_context(client.stream("POST", "/api/chat/stream", json=body))
    chunks = response.aiter_bytes()
    seen = b""
    while b"\nid: " not in seen and not seen.startswith(b"id: "):
        seen += await anext(chunks)
    return response.headers["x-stream-session-id"], chunks


async def test_a_running_stream_is_live_on_its_worker_then_counted_as_ended(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path, STREAM_CHAT_SOURCE="tests.support.sources.ScriptedSource")
    migrate(env)
    create_superuser(env)
    with serve(env, tmp_path / "uvicorn.log", "uvicorn") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as admin,
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        ):
            await sign_in(admin, "boss")
            assert text((await panel(admin)).one(id="live-total")) == "0"

            async with AsyncExitStack() as stack:
                session_id, rest = await open_hanging(client, stack)
                running = await panel(admin)
                cancel = await client.post(f"/api/sessions/{session_id}/cancel")
                await read_rest(rest)
            after = await panel(admin)

    assert text(running.one(id="live-total")) == "1"
    [row] = running.table("live-workers")
    assert row[:6] == [worker_of(server), "1", "1", "0", "1", "0"]
    assert cancel.status_code == 202
    assert text(after.one(id="live-total")) == "0"
    assert ended(after) == {"cancelled by a user": 1}
    timings = {row[0]: row[3] for row in after.table("timings")}
    assert timings == {"Duration": "1", "Time to first event": "1"}


@pytest.fixture
def database_url() -> Iterator[str]:
    """Create a PostgreSQL database for the workers; drop it afterwards."""
    with services.postgres_database("panel") as url:
        yield url


async def test_two_workers_on_postgresql_and_redis_each_show_their_own_streams(
    tmp_path: Path, database_url: str
) -> None:
    env = server_env(
        tmp_path,
        DATABASE_URL=database_url,
        REDIS_URL=services.redis_url(),
        STREAM_CHAT_SOURCE="tests.support.sources.ScriptedSource",
        STREAM_MAX_STREAMS_PER_CLIENT="100",
    )
    migrate(env)
    create_superuser(env)
    with two_workers(env, tmp_path) as (first, second):
        async with (
            httpx.AsyncClient(base_url=second.url, timeout=30) as admin,
            httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
            httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
        ):
            await sign_in(admin, "boss")
            async with AsyncExitStack() as stack:
                opened = [
                    await open_hanging(client, stack) for client in (on_first, on_first, on_second)
                ]
                running = await panel(admin)
                for session_id, _ in opened:  # all through the second worker (via Redis)
                    cancel = await on_second.post(f"/api/sessions/{session_id}/cancel")
                    assert cancel.status_code == 202
                for _, rest in opened:
                    await read_rest(rest)
            after = await panel(admin)

    assert live(running) == {worker_of(first): 2, worker_of(second): 1}
    assert text(running.one(id="live-total")) == "3"
    assert live(after) == {}
    assert ended(after) == {"cancelled by a user": 3}
    durations, firsts = recorded_timings(database_url)
    shown = {row[0]: row[1:3] for row in after.table("timings")}
    assert shown == {
        "Duration": [f"{value:.2f} s" for value in quantiles(durations)],
        "Time to first event": [f"{value:.1f} ms" for value in quantiles(firsts)],
    }


async def read_rest(rest: AsyncIterator[bytes]) -> bytes:
    """Return what a stream still sends, to its end."""
    return b"".join([chunk async for chunk in rest])


def recorded_timings(database_url: str) -> tuple[list[float], list[float]]:
    """Return every ended row's duration (s) and time to first event (ms), read directly."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT EXTRACT(EPOCH FROM ended_at - started_at)::float, first_event_ms "
            "FROM streaming_streamsession WHERE ended_at IS NOT NULL"
        ).fetchall()
    return [row[0] for row in rows], [row[1] for row in rows if row[1] is not None]


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]
