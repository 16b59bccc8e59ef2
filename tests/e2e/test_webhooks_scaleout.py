"""Completion webhooks with two uvicorn workers on one Redis and one PostgreSQL: the worker
that runs a stream delivers its webhook, once, whichever worker ends or reads it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.support import services
from tests.support.live import (
    LiveServer,
    log_problems,
    migrate,
    server_env,
    two_workers,
    wait_for_session,
)
from tests.support.sseparse import parse
from tests.support.webhook_receiver import SECRET, webhook_receiver

CHAT = {"messages": [{"role": "user", "content": "Who delivers?"}], "auto_accepted_plan": True}


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """Create a PostgreSQL database for the workers; drop it afterwards."""
    with services.postgres_database("webhooks") as url:
        yield url


@pytest.fixture(scope="module")
def workers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    tmp = tmp_path_factory.mktemp("webhooks-scaleout")
    env = server_env(
        tmp,
        DATABASE_URL=database_url,
        REDIS_URL=services.redis_url(),
        STREAM_DEMO_DELAY_MS="10",
        STREAM_ON_DISCONNECT="continue",
        STREAM_WEBHOOK_SECRET=SECRET,
        STREAM_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )
    migrate(env)
    with two_workers(env, tmp) as (first, second):
        yield first, second
    for server in (first, second):
        assert log_problems(server.log_text()) == []


async def attempts(database_url: str, session_id: str) -> list[tuple[int, int | None]]:
    """Return the session's recorded webhook attempts, once there is one (bounded)."""
    deadline = asyncio.get_running_loop().time() + 15.0
    while True:
        with psycopg.connect(database_url) as db:
            rows: list[tuple[int, int | None]] = db.execute(
                "SELECT attempt, status_code FROM streaming_webhookdelivery "
                "WHERE session_id = %s ORDER BY attempt",
                [session_id],
            ).fetchall()
        if rows or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.05)  # A row another process writes: nothing to await.


async def test_a_run_ended_through_the_other_worker_is_delivered_once_by_its_own(
    workers: tuple[LiveServer, LiveServer], database_url: str
) -> None:
    first, second = workers
    async with (
        webhook_receiver() as receiver,
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
    ):
        request = {**CHAT, "webhook": receiver.url}
        async with on_first.stream("POST", "/api/chat/stream", json=request) as response:
            session_id = response.headers["x-stream-session-id"]
            chunks = response.aiter_bytes()
            body = await anext(chunks)
            while b"\nid: " not in body:
                body += await anext(chunks)
            # Read through the second worker (from Redis) and cancel there too.
            resumed = on_second.stream("GET", f"/api/sessions/{session_id}/stream")
            async with resumed as follower:
                cancel = await on_second.post(f"/api/sessions/{session_id}/cancel")
                followed = await follower.aread()
            body += b"".join([chunk async for chunk in chunks])
        hook = await receiver.next()
        record = await wait_for_session(on_second, session_id)
        # A second run, on the second worker: its webhook comes after the first's.
        async with on_second.stream("POST", "/api/chat/stream", json=request) as response:
            await response.aread()
        later = await receiver.next()

    assert cancel.status_code == 202
    assert parse(followed)[-1].json()["reason"] == "cancelled"
    assert parse(body)[-1].json()["reason"] == "cancelled"
    assert (record["status"], record["end_reason"]) == ("cancelled", "user_cancel")
    assert hook.problem == ""
    assert hook.verified == record
    assert later.verified["id"] == response.headers["x-stream-session-id"]
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        session_id,
        later.verified["id"],
    ]
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT attempt, status_code FROM streaming_webhookdelivery WHERE session_id = %s",
            [session_id],
        ).fetchall()
    assert rows == [(1, 200)]
    assert json.loads(hook.body)["id"] == session_id
