"""Resume from a snapshot, then live, on real uvicorn workers: a reader that left and comes
back after the log dropped its place ends with what a reader that never left merged."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import websockets

from tests.support import services
from tests.support.deerflow_merge import merged
from tests.support.live import LiveServer, log_problems, migrate, serve, server_env, two_workers
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
    tmp = tmp_path_factory.mktemp("snapshot-two")
    with services.postgres_database("snapshot") as database_url:
        env = server_env(tmp, **settings(DATABASE_URL=database_url, REDIS_URL=services.redis_url()))
        migrate(env)
        with two_workers(env, tmp) as (first, second):
            yield first, second
        for live in (first, second):
            assert log_problems(live.log_text()) == []


def sse_events(body: bytes) -> Numbered:
    return [(int(f.id or 0), f.event, f.json()) for f in parse(body)]


async def read_sse(base: str, session_id: str, after: int) -> Numbered:
    """Follow the session over SSE from `after` to its end."""
    headers = {"Last-Event-ID": str(after)} if after else {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.get(f"/api/sessions/{session_id}/stream", headers=headers)
    assert response.status_code == 200
    return sse_events(response.content)


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


async def chat(base: str, started: asyncio.Future[str], far_past: asyncio.Event) -> Numbered:
    """Run a chat and read all of it: the reader that never leaves (attached from event 0).

    Sets `started` to its session id, and `far_past` once it read 130 events.
    """
    body = b""
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        client.stream("POST", "/api/chat/stream", json=CHAT) as response,
    ):
        started.set_result(response.headers["x-stream-session-id"])
        async for chunk in response.aiter_bytes():
            body += chunk
            if body.count(b"\n\n") > 130:
                far_past.set()
    return sse_events(body)


def state(events: Numbered) -> dict[str, Any]:
    return merged([(name, data) for _, name, data in events])


async def snapshot_resume(run_on: LiveServer, read_on: LiveServer, transport: str) -> None:
    """Resume a run from LEFT_AT on `read_on` once its log dropped far past that id."""
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    far_past = asyncio.Event()
    stayed = asyncio.create_task(chat(run_on.url, started, far_past))
    session_id = await started
    reached = asyncio.create_task(far_past.wait())
    await asyncio.wait({stayed, reached}, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    assert not stayed.done(), "the run ended before the reader that left came back"
    # A reader that read the first LEFT_AT events (the same for every reader) comes back.
    if transport == "sse":
        resumed = await read_sse(read_on.url, session_id, LEFT_AT)
    else:
        resumed = await read_ws(read_on.url, session_id, LEFT_AT)
    whole = await stayed
    before = whole[:LEFT_AT]

    assert not [e for e in whole if "snapshot" in e[2]]  # it got every event as it came
    compacted = [e for e in resumed if e[2].get("snapshot")]
    ids = [event_id for event_id, _, _ in resumed]
    assert compacted, "not answered from a snapshot"
    assert resumed[0] in compacted  # the snapshot first,
    assert ids == sorted(ids)  # ids never go down,
    assert ids[-1] == whole[-1][0]  # and carry on to the end,
    live = [e for e in resumed if e[0] > compacted[-1][0]]
    assert live  # then live events (the run had about 2 s to go)
    assert len(resumed) < len(whole) - LEFT_AT - 100  # compacted: fewer frames than events
    assert state(before + resumed) == state(whole)
    assert state(whole)["messages"][-1]["agent"] == "reporter"


async def resumes(server: LiveServer) -> dict[str, float]:
    """Return the server's resumes counter by outcome."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        text = (await client.get("/metrics")).text
    found = re.findall(r'^deerflow_stream_resumes_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_resume_past_the_log_on_one_worker(worker: LiveServer, transport: str) -> None:
    before = await resumes(worker)
    await snapshot_resume(worker, worker, transport)
    after = await resumes(worker)
    assert after.get("snapshot", 0) - before.get("snapshot", 0) == 1
    assert after.get("replayed", 0) == before.get("replayed", 0)


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
