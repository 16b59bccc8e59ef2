"""Runs seen while they run, on two uvicorn workers sharing Redis and PostgreSQL: the live
record, a thread's sessions, cancel with `wait`; and the stall watchdog on one uvicorn."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import services
from tests.support.fake_openai import FakeOpenAI, chunk, stream
from tests.support.live import (
    LiveServer,
    migrate,
    read_until_closed,
    serve,
    server_env,
    two_workers,
)
from tests.support.sseparse import parse

SOURCE = "tests.support.live_sources.LiveScriptSource"
STALLED = {
    "error": "The stream stopped: its source sent nothing for too long.",
    "reason": "stalled",
}


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """Create a PostgreSQL database for the workers; drop it afterwards."""
    with services.postgres_database("live_records") as url:
        yield url


@pytest.fixture(scope="module")
def workers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    tmp = tmp_path_factory.mktemp("live-records")
    env = server_env(
        tmp,
        DATABASE_URL=database_url,
        REDIS_URL=services.redis_url(),
        STREAM_CHAT_SOURCE=SOURCE,
        STREAM_ON_DISCONNECT="continue",
    )
    migrate(env)
    with two_workers(env, tmp) as (first, second):
        yield first, second
    for server in (first, second):
        log = server.log_text()
        assert "Traceback" not in log, log
        assert " ERROR " not in log, log


def chat(script: str, thread_id: str) -> dict[str, Any]:
    return {"thread_id": thread_id, "messages": [{"role": "user", "content": script}]}


async def read_events(chunks: AsyncIterator[bytes], body: bytes, count: int) -> bytes:
    """Read the stream until it has sent `count` events."""
    while body.count(b"\nid: ") + body.startswith(b"id: ") < count:
        body += await anext(chunks)
    return body


async def record_once(
    client: httpx.AsyncClient, session_id: str, last_event_id: int, events_sent: int
) -> dict[str, Any]:
    """Return the record once its live counts reach these (the run writes them to Redis
    a moment after it sends them)."""
    give_up = time.monotonic() + 10
    while True:
        record: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        reached = (record["last_event_id"], record["events_sent"]) == (last_event_id, events_sent)
        if reached or time.monotonic() > give_up:
            return record
        await asyncio.sleep(0.05)


async def test_a_running_sessions_record_counts_live_and_the_same_on_every_worker(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
        on_first.stream("POST", "/api/chat/stream", json=chat("burst 60", "live")) as response,
    ):
        session_id = response.headers["x-stream-session-id"]
        chunks = response.aiter_bytes()
        body = await read_events(chunks, b"", 5)
        early = (await on_second.get(f"/api/sessions/{session_id}")).json()
        body = await read_events(chunks, body, 60)
        # All 60 read: both workers give the same record, with both counts at 60.
        on_other = await record_once(on_second, session_id, 60, 60)
        on_own = (await on_first.get(f"/api/sessions/{session_id}")).json()

        cancel = await on_second.post(f"/api/sessions/{session_id}/cancel", params={"wait": 10})
        body += b"".join([part async for part in chunks])

    assert early["status"] == "running"
    assert 0 < early["last_event_id"] < 60
    assert 0 < early["events_sent"] <= early["last_event_id"]
    assert on_other == on_own
    assert (on_own["status"], on_own["last_event_id"], on_own["events_sent"]) == ("running", 60, 60)
    # Cancelled through the other worker, answered with the final record.
    assert cancel.status_code == 200
    final = cancel.json()
    assert (final["status"], final["end_reason"]) == ("cancelled", "user_cancel")
    assert final["ended_at"] is not None
    assert final["last_event_id"] == final["events_sent"] == 61  # 60 and the cancel's frame
    assert parse(body)[-1].json()["reason"] == "cancelled"


async def test_a_threads_sessions_newest_first_and_rejoining_the_live_one(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
    ):
        done = await on_first.post("/api/chat/stream", json=chat("paced 3", thread))
        other = await on_second.post("/api/chat/stream", json=chat("paced 2", "elsewhere"))
        async with on_first.stream(
            "POST", "/api/chat/stream", json=chat("burst 4", thread)
        ) as live:
            live_id = live.headers["x-stream-session-id"]
            await read_events(live.aiter_bytes(), b"", 4)
            await record_once(on_second, live_id, 4, 4)
        # The client went away (a reload); the run goes on (STREAM_ON_DISCONNECT=continue).
        listed = await on_second.get(f"/api/threads/{thread}/sessions")
        limited = await on_second.get(f"/api/threads/{thread}/sessions", params={"limit": 1})
        running = [s for s in listed.json()["sessions"] if s["status"] == "running"]
        async with on_second.stream(
            "GET",
            f"/api/sessions/{running[0]['id']}/stream",
            headers={"Last-Event-ID": str(running[0]["last_event_id"])},
        ) as rejoined:
            chunks = rejoined.aiter_bytes()
            opening = await anext(chunks)
            cancel = await on_second.post(f"/api/sessions/{live_id}/cancel", params={"wait": 10})
            rest = b"".join([part async for part in chunks])

    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert [s["id"] for s in sessions] == [live_id, done.headers["x-stream-session-id"]]
    assert other.headers["x-stream-session-id"] not in str(sessions)
    assert [(s["status"], s["last_event_id"]) for s in sessions] == [
        ("running", 4),
        ("completed", 3),
    ]
    assert [s["id"] for s in limited.json()["sessions"]] == [live_id]
    # Rejoined after the last event it had: only what came next (the cancel's frame).
    assert cancel.status_code == 200
    frames = parse(opening + rest)
    assert [(frame.id, frame.json()["reason"]) for frame in frames] == [("5", "cancelled")]


async def test_cancel_with_wait_answers_202_when_the_end_takes_longer(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = workers
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
        on_first.stream("POST", "/api/chat/stream", json=chat("linger", "slow-end")) as response,
    ):
        session_id = response.headers["x-stream-session-id"]
        await read_events(response.aiter_bytes(), b"", 1)
        # The run's cleanup takes LINGER_SECONDS once stopped: far longer than this wait.
        hurried = await on_second.post(f"/api/sessions/{session_id}/cancel", params={"wait": 0.3})
        meanwhile = (await on_second.get(f"/api/sessions/{session_id}")).json()
        patient = await on_second.post(f"/api/sessions/{session_id}/cancel", params={"wait": 30})
        late = await on_second.post(f"/api/sessions/{session_id}/cancel", params={"wait": 30})
        refused = await on_second.post(f"/api/sessions/{session_id}/cancel", params={"wait": "61"})

    assert hurried.status_code == 202
    assert hurried.json() == {"id": session_id, "status": "cancelling"}
    assert meanwhile["status"] == "running"  # still recording its end
    assert patient.status_code == 200
    assert (patient.json()["status"], patient.json()["end_reason"]) == ("cancelled", "user_cancel")
    assert late.status_code == 409  # ended: nothing to cancel, nothing changes
    assert refused.status_code == 422
    assert refused.json() == {"detail": "wait must be a number of seconds from 0 to 60."}


# The stall watchdog, on one uvicorn: a silent source of ours, and a silent model server.


@pytest.fixture
async def silent_model() -> AsyncIterator[FakeOpenAI]:
    """A model server that sends one chunk, then nothing while keeping the connection."""
    async with FakeOpenAI(stream([chunk({"content": "Half "})], then="stall")).running() as fake:
        yield fake


async def test_a_source_that_stops_yielding_ends_stalled_though_heartbeats_flow(
    tmp_path: Path, silent_model: FakeOpenAI
) -> None:
    env = server_env(
        tmp_path,
        STREAM_CHAT_SOURCE=SOURCE,
        STREAM_PROSE_SOURCE="openai",
        OPENAI_BASE_URL=silent_model.base_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_MAX_RETRIES="0",
        STREAM_IDLE_TIMEOUT_SECONDS="1",
        STREAM_HEARTBEAT_SECONDS="0.1",
    )
    migrate(env)
    with serve(env, tmp_path / "uvicorn.log", "uvicorn") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async with client.stream("POST", "/api/chat/stream", json=chat("hang", "t")) as hung:
                hung_id = hung.headers["x-stream-session-id"]
                hung_body = await read_until_closed(hung)
            prose = {"prompt": "Tea is old.", "option": "longer"}
            async with client.stream("POST", "/api/prose/generate", json=prose) as model:
                model_id = model.headers["x-stream-session-id"]
                model_body = await read_until_closed(model)
            # A source that keeps yielding is never stalled, however long it runs.
            paced = await client.post("/api/chat/stream", json=chat("paced 6 300", "t"))
            records = [
                (await client.get(f"/api/sessions/{session_id}")).json()
                for session_id in (hung_id, model_id, paced.headers["x-stream-session-id"])
            ]
        [connection] = silent_model.connections

    hung_frames = parse(hung_body)
    assert b"\n: ping\n" in hung_body
    assert hung_frames[-1].event == "error"
    assert hung_frames[-1].json() == {"thread_id": "t", **STALLED}
    model_frames = parse(model_body)
    assert model_frames[0].data == "Half "
    assert (model_frames[-1].event, model_frames[-1].json()) == ("error", STALLED)
    assert connection.closed.is_set()  # the request to the model was closed
    assert [(r["status"], r["end_reason"]) for r in records] == [
        ("failed", "stalled"),
        ("failed", "stalled"),
        ("completed", ""),
    ]
    assert parse(paced.content)[-1].json()["finish_reason"] == "stop"
    assert records[0]["last_event_id"] == 2  # one chunk, then the final frame
