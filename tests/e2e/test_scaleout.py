"""Two daphne workers sharing one Redis and one PostgreSQL: cancel anywhere, run many."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import websockets

from tests.support import services
from tests.support.live import LiveServer, daphne, migrate, server_env, wait_for_session
from tests.support.sseparse import parse

CANCELLED = {"error": "The stream was cancelled.", "reason": "cancelled"}


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """Create a PostgreSQL database for the workers; drop it afterwards."""
    with services.postgres_database("scaleout") as url:
        yield url


@pytest.fixture(scope="module")
def workers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    redis_url = services.redis_url()
    tmp = tmp_path_factory.mktemp("scaleout")
    env = server_env(
        tmp,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STREAM_DEMO_DELAY_MS="5",
        STREAM_ON_DISCONNECT="continue",
        STREAM_MAX_STREAMS_PER_CLIENT="1000",  # every test stream comes from 127.0.0.1
        DATABASE_POOL_MAX_SIZE="8",
    )
    migrate(env)
    with ExitStack() as stack:
        first = stack.enter_context(daphne(env, tmp / "first.log"))
        second = stack.enter_context(daphne(env, tmp / "second.log"))
        yield first, second
    for server in (first, second):
        log = server.log_text()
        assert "Traceback" not in log, log
        assert " ERROR " not in log, log


QUESTION = {"messages": [{"role": "user", "content": "Why is the sky blue?"}]}


async def test_sse_stream_on_one_worker_cancelled_through_the_other(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    request = {**QUESTION, "auto_accepted_plan": True, "thread_id": "sky"}
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
        on_first.stream("POST", "/api/chat/stream", json=request) as response,
    ):
        session_id = response.headers["x-stream-session-id"]
        body = b""
        chunks = response.aiter_bytes()
        while body.count(b"\nid: ") < 5:
            body += await anext(chunks)

        cancel = await on_second.post(f"/api/sessions/{session_id}/cancel")
        sent_at = time.monotonic()
        async for chunk in chunks:
            body += chunk
        elapsed = time.monotonic() - sent_at
        record = await wait_for_session(on_second, session_id)

    assert cancel.status_code == 202
    last = body.rstrip(b"\n").split(b"\n\n")[-1].decode()
    assert last.split("\n")[1] == "event: error"
    assert json.loads(last.split("\n")[2].removeprefix("data: ")) == {
        "thread_id": "sky",
        **CANCELLED,
    }
    assert elapsed < 1.0
    assert (record["status"], record["end_reason"]) == ("cancelled", "user_cancel")


async def test_websocket_stream_on_one_worker_cancelled_through_the_other(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    ws_url = first.url.replace("http://", "ws://") + "/ws/stream/"
    start = {"type": "chat.start", "request": {**QUESTION, "auto_accepted_plan": True}}
    async with websockets.connect(ws_url) as ws, httpx.AsyncClient(base_url=second.url) as api:
        await ws.send(json.dumps(start))
        session_id = json.loads(await ws.recv())["session_id"]
        for _ in range(5):
            assert json.loads(await ws.recv())["type"] == "event"

        cancel = await api.post(f"/api/sessions/{session_id}/cancel")
        sent_at = time.monotonic()
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] != "end":
            messages.append(json.loads(await ws.recv()))
        elapsed = time.monotonic() - sent_at
        record = await wait_for_session(api, session_id)

    assert cancel.status_code == 202
    assert messages[-2]["event"] == "error"
    assert messages[-2]["data"]["reason"] == "cancelled"
    assert messages[-1] == {"type": "end", "status": "cancelled", "reason": "user_cancel"}
    assert elapsed < 1.0
    assert (record["status"], record["end_reason"]) == ("cancelled", "user_cancel")


async def test_drop_on_one_worker_and_resume_on_the_other(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    request = {**QUESTION, "auto_accepted_plan": True, "thread_id": "resume-across"}
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
    ):
        async with on_first.stream("POST", "/api/chat/stream", json=request) as response:
            session_id = response.headers["x-stream-session-id"]
            # An uninterrupted reader on the other worker, from the start (via Redis).
            whole_task = asyncio.create_task(on_second.get(f"/api/sessions/{session_id}/stream"))
            body = b""
            chunks = response.aiter_bytes()
            while len(parse(body)) < 10:
                body += await anext(chunks)
        before = parse(body)
        resumed = await on_second.get(
            f"/api/sessions/{session_id}/stream",
            headers={"Last-Event-ID": str(before[-1].id)},
        )
        whole = await whole_task

    joined = before + parse(resumed.content)
    expected = parse(whole.content)
    assert resumed.status_code == 200
    assert [(f.id, f.event, f.data) for f in joined] == [(f.id, f.event, f.data) for f in expected]
    assert len(expected) >= 30
    assert expected[-1].json()["agent"] == "reporter"


async def test_websocket_resume_on_the_other_worker(workers: tuple[LiveServer, LiveServer]) -> None:
    first, second = workers
    start = {"type": "chat.start", "request": {**QUESTION, "auto_accepted_plan": True}}
    async with websockets.connect(first.url.replace("http://", "ws://") + "/ws/stream/") as ws:
        await ws.send(json.dumps(start))
        session_id = json.loads(await ws.recv())["session_id"]
        before = [json.loads(await ws.recv()) for _ in range(5)]
    async with websockets.connect(second.url.replace("http://", "ws://") + "/ws/stream/") as ws:
        await ws.send(json.dumps({"type": "resume", "session_id": session_id, "last_event_id": 5}))
        after: list[dict[str, Any]] = []
        while not after or after[-1]["type"] != "end":
            after.append(json.loads(await ws.recv()))
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as api:
        whole = parse((await api.get(f"/api/sessions/{session_id}/stream")).content)

    events = before + after[:-1]
    assert [m["id"] for m in events] == [int(f.id or 0) for f in whole]
    assert [m["data"] for m in events] == [f.json() for f in whole]
    assert after[-1] == {"type": "end", "status": "completed", "reason": ""}


async def test_200_concurrent_streams_across_both_workers(
    workers: tuple[LiveServer, LiveServer], database_url: str
) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, bytes]:
        request = {**QUESTION, "thread_id": f"load-{i}"}
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            assert response.status_code == 200
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
            return response.headers["x-stream-session-id"], body

    async with (
        httpx.AsyncClient(base_url=workers[0].url, timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=workers[1].url, timeout=60, limits=limits) as b,
    ):
        streams = [asyncio.create_task(one((a, b)[i % 2], i)) for i in range(200)]
        connections = await asyncio.to_thread(peak_connections, database_url, streams)
        results = await asyncio.gather(*streams)

    last_events = [body.rstrip().split(b"\n\n")[-1] for _, body in results]
    assert all(b"event: interrupt\n" in last for last in last_events)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM streaming_streamsession GROUP BY status"
        ).fetchall()
    finished: dict[str, int] = dict(rows)
    assert finished.get("completed", 0) >= 200
    assert "running" not in finished
    # Each worker holds one connection for stream records, plus its pool (bounded).
    assert 0 < connections <= 2 * (1 + 8)


def peak_connections(database_url: str, streams: Sequence[asyncio.Task[Any]]) -> int:
    """Return the most connections to the database seen while the streams run."""
    name = urlsplit(database_url).path.lstrip("/")
    peak = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not all(task.done() for task in streams):
            count = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
            peak = max(peak, int(count[0]) if count else 0)
            time.sleep(0.05)
    return peak
