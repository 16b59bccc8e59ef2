"""Resume from a snapshot, then live, on real uvicorn workers: a reader that left and comes
back after the log dropped its place ends with what a reader that never left merged."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
import websockets

from tests.support import services
from tests.support.deerflow_merge import merged
from tests.support.live import LiveServer, log_problems, migrate, serve, server_env
from tests.support.sseparse import parse

CHAT = {"messages": [{"role": "user", "content": "Why is tea green?"}], "auto_accepted_plan": True}
LEFT_AT = 10
Numbered = list[tuple[int, str, dict[str, Any]]]  # (id, event, data) as a reader got them


def settings(**overrides: str) -> dict[str, str]:
    return {
        "STREAM_LOG_MAX_EVENTS": "8",
        "STREAM_ON_DISCONNECT": "continue",
        "STREAM_DEMO_DELAY_MS": "15",
        **overrides,
    }


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("snapshot-one")
    env = server_env(tmp, **settings())
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live
    assert log_problems(live.log_text()) == []


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    admin_url = services.postgres_url()
    name = f"snapshot_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    tmp = tmp_path_factory.mktemp("snapshot-two")
    env = server_env(tmp, **settings(DATABASE_URL=database_url, REDIS_URL=services.redis_url()))
    try:
        migrate(env)
        with ExitStack() as stack:
            first = stack.enter_context(serve(env, tmp / "first.log", "uvicorn"))
            second = stack.enter_context(serve(env, tmp / "second.log", "uvicorn"))
            yield first, second
        for live in (first, second):
            assert log_problems(live.log_text()) == []
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sse_events(body: bytes) -> Numbered:
    return [(int(f.id or 0), f.event, f.json()) for f in parse(body)]


async def read_sse(
    base: str, session_id: str, after: int, until: asyncio.Event | None = None, count: int = 0
) -> Numbered:
    """Follow the session over SSE from `after` to its end (set `until` after `count` events)."""
    headers = {"Last-Event-ID": str(after)} if after else {}
    body = b""
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        client.stream("GET", f"/api/sessions/{session_id}/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            body += chunk
            if until is not None and body.count(b"\n\n") > count:
                until.set()
    return sse_events(body)


async def read_ws(base: str, session_id: str, after: int) -> Numbered:
    """Follow the session over a WebSocket from `after` to its `end` message."""
    url = base.replace("http://", "ws://") + "/ws/stream/"
    got: Numbered = []
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps({"type": "resume", "session_id": session_id, "last_event_id": after})
        )
        while (message := json.loads(await ws.recv()))["type"] != "end":
            assert message["type"] == "event", message
            got.append((message["id"], message["event"], message["data"]))
    assert message["status"] == "completed"
    return got


async def leave_after(base: str, events: int) -> tuple[str, Numbered]:
    """Start a chat, read `events` events, hang up; return its session and what was read."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        client.stream("POST", "/api/chat/stream", json=CHAT) as response,
    ):
        session_id = response.headers["x-stream-session-id"]
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(parse(body)) >= events:
                break
    return session_id, sse_events(body)[:events]


def state(events: Numbered) -> dict[str, Any]:
    return merged([(name, data) for _, name, data in events])


async def snapshot_resume(run_on: LiveServer, read_on: LiveServer, transport: str) -> None:
    """Leave a run at LEFT_AT; once a reader that stayed is far past it, resume on `read_on`."""
    session_id, before = await leave_after(run_on.url, LEFT_AT)
    far_past = asyncio.Event()
    # A reader that never left (from the start: it held its place, the log dropped the rest).
    stayed = asyncio.create_task(read_sse(read_on.url, session_id, 0, far_past, 130))
    await asyncio.wait(
        {stayed, asyncio.create_task(far_past.wait())}, return_when="FIRST_COMPLETED"
    )
    assert not stayed.done(), "the run ended before the reader that left came back"
    if transport == "sse":
        resumed = await read_sse(read_on.url, session_id, LEFT_AT)
    else:
        resumed = await read_ws(read_on.url, session_id, LEFT_AT)
    whole = await stayed

    compacted = [e for e in resumed if e[2].get("snapshot")]
    ids = [event_id for event_id, _, _ in resumed]
    assert compacted, "not answered from a snapshot"
    assert resumed[0] in compacted  # the snapshot first,
    assert ids == sorted(ids)  # ids never go down,
    assert ids[-1] == whole[-1][0]  # and carry on to the end,
    live = [e for e in resumed if e[0] > compacted[-1][0]]
    assert len(live) > 20  # live events after the snapshot
    assert len(resumed) < len(whole) - LEFT_AT - 100  # compacted: fewer frames than events
    assert state(before + resumed) == state(whole)
    assert state(whole)["messages"][-1]["agent"] == "reporter"


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_resume_past_the_log_on_one_worker(worker: LiveServer, transport: str) -> None:
    await snapshot_resume(worker, worker, transport)
    async with httpx.AsyncClient(base_url=worker.url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'deerflow_stream_resumes_total{outcome="snapshot"}' in metrics


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_resume_past_the_log_on_the_other_worker(
    workers: tuple[LiveServer, LiveServer], transport: str
) -> None:
    await snapshot_resume(workers[0], workers[1], transport)


async def test_a_finished_run_resumes_from_its_state_until_that_is_gone(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as client:
        response = await client.post("/api/chat/stream", json=CHAT)
    session_id = response.headers["x-stream-session-id"]
    whole = sse_events(response.content)
    near_end = str(whole[-1][0] - 3)  # kept: Redis keeps the last STREAM_LOG_MAX_EVENTS

    resumed = await read_sse(second.url, session_id, 3)
    store = redis.Redis.from_url(services.redis_url())
    hex_id = uuid.UUID(session_id).hex
    store.delete(f"streaming:snapshot:{hex_id}")  # as if its state had expired
    async with httpx.AsyncClient(base_url=second.url, timeout=60) as client:
        path = f"/api/sessions/{session_id}/stream"
        state_gone = await client.get(path, headers={"Last-Event-ID": "3"})
        kept = await client.get(path, headers={"Last-Event-ID": near_end})
        store.delete(f"streaming:log:{hex_id}")  # and its log
        log_gone = await client.get(path, headers={"Last-Event-ID": near_end})

    assert resumed[0][2]["snapshot"] is True
    assert state(whole[:3] + resumed) == state(whole)
    assert state_gone.status_code == 410
    assert state_gone.json()["detail"].startswith("Events after id 3 are no longer kept;")
    assert kept.status_code == 200
    assert sse_events(kept.content) == whole[-3:]
    assert log_gone.status_code == 410
    assert log_gone.json() == {"detail": "The events of this session are no longer kept."}
