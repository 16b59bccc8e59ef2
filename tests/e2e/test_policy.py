"""A run's policy on real uvicorn servers: per-request `on_disconnect`, one live run per
thread (`reject`, `interrupt`, `enqueue`), and deer-flow's Stop-then-ask.

Every test runs twice: on one uvicorn (SQLite, no Redis; STREAM_ON_DISCONNECT=cancel) and
on two uvicorn workers sharing PostgreSQL and Redis (STREAM_ON_DISCONNECT=continue), where
the first request of a test goes to one worker and the second to the other.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from tests.support import services
from tests.support.live import (
    LiveServer,
    migrate,
    read_until_closed,
    serve,
    server_env,
    two_workers,
)
from tests.support.sseparse import parse

QUESTION = {
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    "auto_accepted_plan": True,
}
SUPERSEDED = "A newer request on this thread replaced this stream."
LIVE = ("queued", "running")
# How a run whose client hung up ends, by its on_disconnect.
ENDED_BY = {"cancel": ("cancelled", "client_disconnect"), "continue": ("completed", "")}


@dataclass
class Deployment:
    """Where the first and the second request of a test go, and the server's default."""

    first: LiveServer
    second: LiveServer
    on_disconnect: str


def _env(tmp: Any, **overrides: str) -> dict[str, str]:
    return server_env(
        tmp,
        STREAM_DEMO_DELAY_MS="10",  # an auto-accepted demo chat: some 300 events, 3 s
        STREAM_HEARTBEAT_SECONDS="0.2",  # a queued stream shows its pings soon
        STREAM_MAX_STREAMS_PER_CLIENT="1000",
        **overrides,
    )


@pytest.fixture(scope="module", params=["one", "two"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp(f"policy-{request.param}")
    if request.param == "one":
        env = _env(tmp, STREAM_ON_DISCONNECT="cancel")
        migrate(env)
        with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
            yield Deployment(live, live, "cancel")
        return
    redis_url = services.redis_url()
    with services.postgres_database("policy") as database_url:
        env = _env(
            tmp, DATABASE_URL=database_url, REDIS_URL=redis_url, STREAM_ON_DISCONNECT="continue"
        )
        migrate(env)
        with two_workers(env, tmp) as (first, second):
            yield Deployment(first, second, "continue")


@pytest.fixture
async def clients(deployment: Deployment) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with (
        httpx.AsyncClient(base_url=deployment.first.url, timeout=60) as first,
        httpx.AsyncClient(base_url=deployment.second.url, timeout=60) as second,
    ):
        yield first, second


def new_thread() -> str:
    return f"policy-{uuid.uuid4().hex[:8]}"


async def final_record(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    """Return the session's record once it is final (fails after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        record: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        if record["status"] not in LIVE:
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)


async def read_events(chunks: AsyncIterator[bytes], body: bytes, count: int) -> bytes:
    """Read on until `body` holds `count` events."""
    while body.count(b"\nid: ") + body.startswith(b"id: ") < count:
        body += await anext(chunks)
    return body


# Per-request on_disconnect.


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
async def test_on_disconnect_per_request_over_sse(
    clients: tuple[httpx.AsyncClient, ...], on_disconnect: str
) -> None:
    first, second = clients
    request = {**QUESTION, "thread_id": new_thread(), "on_disconnect": on_disconnect}
    async with first.stream("POST", "/api/chat/stream", json=request) as response:
        session_id = response.headers["x-stream-session-id"]
        await read_events(response.aiter_bytes(), b"", 2)
    record = await final_record(second, session_id)

    expected = ENDED_BY[on_disconnect]
    assert (record["status"], record["end_reason"]) == expected
    if on_disconnect == "continue":  # the run went on: a resume gets all of it
        whole = parse((await second.get(f"/api/sessions/{session_id}/stream")).content)
        assert whole[-1].json()["agent"] == "reporter"


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
async def test_on_disconnect_per_request_for_prose_and_websocket(
    deployment: Deployment, clients: tuple[httpx.AsyncClient, ...], on_disconnect: str
) -> None:
    first, second = clients
    prose = {"prompt": "The sky " * 200, "option": "longer", "on_disconnect": on_disconnect}
    async with first.stream("POST", "/api/prose/generate", json=prose) as response:
        prose_id = response.headers["x-stream-session-id"]
        await read_events(response.aiter_bytes(), b"", 2)
    start = {
        "type": "chat.start",
        "request": {**QUESTION, "thread_id": new_thread(), "on_disconnect": on_disconnect},
    }
    async with websockets.connect(deployment.first.url.replace("http", "ws") + "/ws/stream/") as ws:
        await ws.send(json.dumps(start))
        ws_id = json.loads(await ws.recv())["session_id"]
        assert json.loads(await ws.recv())["type"] == "event"

    expected = ENDED_BY[on_disconnect]
    for session_id in (prose_id, ws_id):
        record = await final_record(second, session_id)
        assert (record["status"], record["end_reason"]) == expected


async def test_unknown_policy_values_are_refused_with_422(
    deployment: Deployment, clients: tuple[httpx.AsyncClient, ...]
) -> None:
    first, _ = clients
    chat = await first.post("/api/chat/stream", json={**QUESTION, "on_disconnect": "later"})
    strategy = await first.post("/api/chat/stream", json={"multitask_strategy": "queue"})
    prose = await first.post(
        "/api/prose/generate", json={"prompt": "x", "option": "fix", "on_disconnect": 1}
    )
    start = {"type": "chat.start", "request": {"on_disconnect": "sometimes"}}
    async with websockets.connect(deployment.first.url.replace("http", "ws") + "/ws/stream/") as ws:
        await ws.send(json.dumps(start))
        refused = json.loads(await ws.recv())

    for response, field in [
        (chat, "on_disconnect"),
        (strategy, "multitask_strategy"),
        (prose, "on_disconnect"),
    ]:
        assert response.status_code == 422
        assert "x-stream-session-id" not in response.headers
        [issue] = response.json()["detail"]
        assert (issue["type"], issue["loc"]) == ("literal_error", ["body", field])
    assert chat.json()["detail"][0]["msg"] == "Input should be 'cancel' or 'continue'"
    assert strategy.json()["detail"][0]["msg"] == (
        "Input should be 'interrupt', 'reject' or 'enqueue'"
    )
    assert refused["type"] == "error"
    assert refused["detail"][0]["loc"] == ["body", "on_disconnect"]


# One live run per thread.


async def test_reject_answers_409_naming_the_live_session(
    deployment: Deployment, clients: tuple[httpx.AsyncClient, ...]
) -> None:
    first, second = clients
    thread = new_thread()
    request = {**QUESTION, "thread_id": thread, "multitask_strategy": "reject"}
    async with first.stream("POST", "/api/chat/stream", json=request) as live:
        live_id = live.headers["x-stream-session-id"]
        chunks = live.aiter_bytes()
        body = await read_events(chunks, b"", 2)
        refused = await second.post("/api/chat/stream", json=request)
        ws_url = deployment.second.url.replace("http", "ws") + "/ws/stream/"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "chat.start", "request": request}))
            ws_refused = json.loads(await ws.recv())
        body += b"".join([chunk async for chunk in chunks])
    record = await final_record(second, live_id)

    detail = (
        "This thread has a live run (`session_id`); wait for it to end, cancel it, or send "
        "multitask_strategy `interrupt` or `enqueue`."
    )
    assert refused.status_code == 409
    assert refused.json() == {"detail": detail, "session_id": live_id}
    assert "x-stream-session-id" not in refused.headers
    assert ws_refused == {"type": "error", "detail": detail, "session_id": live_id}
    # The live run went on untouched.
    assert parse(body)[-1].json()["agent"] == "reporter"
    assert (record["status"], record["end_reason"]) == ("completed", "")


async def test_reject_lets_exactly_one_of_two_simultaneous_requests_start(
    clients: tuple[httpx.AsyncClient, ...],
) -> None:
    request = {**QUESTION, "thread_id": new_thread(), "multitask_strategy": "reject"}

    async def post(client: httpx.AsyncClient) -> tuple[int, str, bytes]:
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            body = await read_until_closed(response)
            return response.status_code, response.headers.get("x-stream-session-id", ""), body

    results = await asyncio.gather(*(post(clients[i % 2]) for i in range(6)))

    started = [result for result in results if result[0] == 200]
    refused = [json.loads(result[2]) for result in results if result[0] == 409]
    assert len(started) == 1
    assert len(refused) == 5
    assert {body["session_id"] for body in refused} == {started[0][1]}


async def test_interrupt_ends_the_live_run_superseded_then_runs_the_new_one(
    clients: tuple[httpx.AsyncClient, ...],
) -> None:
    first, second = clients
    thread = new_thread()
    request = {**QUESTION, "thread_id": thread, "multitask_strategy": "interrupt"}
    async with first.stream("POST", "/api/chat/stream", json=request) as old:
        old_id = old.headers["x-stream-session-id"]
        chunks = old.aiter_bytes()
        old_body = await read_events(chunks, b"", 3)
        async with second.stream("POST", "/api/chat/stream", json=request) as new:
            new_id = new.headers["x-stream-session-id"]
            # The old stream's readers get the final frame; then it ends.
            old_body += b"".join([chunk async for chunk in chunks])
            new_body = b"".join([chunk async for chunk in new.aiter_bytes()])
    old_record = await final_record(second, old_id)
    new_record = await final_record(first, new_id)

    last = old_body.rstrip(b"\n").split(b"\n\n")[-1]
    final = json.dumps(
        {"thread_id": thread, "error": SUPERSEDED, "reason": "superseded"}, separators=(",", ":")
    )
    assert last == f"id: {old_record['last_event_id']}\nevent: error\ndata: {final}".encode()
    assert (old_record["status"], old_record["end_reason"]) == ("cancelled", "superseded")
    assert new.status_code == 200
    assert parse(new_body)[-1].json()["agent"] == "reporter"
    assert (new_record["status"], new_record["end_reason"]) == ("completed", "")
    # The new run was admitted only once the old one's row was final.
    assert new_record["started_at"] >= old_record["ended_at"]


async def test_interrupt_tells_a_websocket_reader_its_run_was_superseded(
    deployment: Deployment, clients: tuple[httpx.AsyncClient, ...]
) -> None:
    _, second = clients
    thread = new_thread()
    start = {"type": "chat.start", "request": {**QUESTION, "thread_id": thread}}
    async with websockets.connect(deployment.first.url.replace("http", "ws") + "/ws/stream/") as ws:
        await ws.send(json.dumps(start))
        old_id = json.loads(await ws.recv())["session_id"]
        assert json.loads(await ws.recv())["type"] == "event"
        # The default strategy: interrupt.
        async with second.stream("POST", "/api/chat/stream", json=start["request"]) as new:
            messages = [json.loads(await ws.recv())]
            while messages[-1]["type"] != "end":
                messages.append(json.loads(await ws.recv()))
            new_body = b"".join([chunk async for chunk in new.aiter_bytes()])
    old_record = await final_record(second, old_id)

    assert messages[-2]["event"] == "error"
    final = {"thread_id": thread, "error": SUPERSEDED, "reason": "superseded"}
    assert messages[-2]["data"] == final
    assert messages[-1] == {"type": "end", "status": "cancelled", "reason": "superseded"}
    assert (old_record["status"], old_record["end_reason"]) == ("cancelled", "superseded")
    assert parse(new_body)[-1].json()["agent"] == "reporter"


async def test_enqueue_opens_at_once_queued_then_runs_when_the_live_run_ends(
    clients: tuple[httpx.AsyncClient, ...],
) -> None:
    first, second = clients
    thread = new_thread()
    request = {**QUESTION, "thread_id": thread, "multitask_strategy": "enqueue"}
    async with first.stream("POST", "/api/chat/stream", json=request) as old:
        old_id = old.headers["x-stream-session-id"]
        chunks = old.aiter_bytes()
        old_body = await read_events(chunks, b"", 1)
        async with second.stream("POST", "/api/chat/stream", json=request) as queued:
            queued_id = queued.headers["x-stream-session-id"]
            waiting = queued.aiter_bytes()
            opened = await anext(waiting)
            while_queued = (await first.get(f"/api/sessions/{queued_id}")).json()
            old_body += b"".join([chunk async for chunk in chunks])
            old_record = await final_record(first, old_id)
            queued_body = opened + b"".join([chunk async for chunk in waiting])
    queued_record = await final_record(second, queued_id)

    assert queued.status_code == 200
    assert opened.startswith(b": stream open\n\n")
    assert (while_queued["status"], while_queued["events_sent"]) == ("queued", 0)
    assert parse(old_body)[-1].json()["agent"] == "reporter"
    assert (old_record["status"], old_record["end_reason"]) == ("completed", "")
    # Heartbeats flowed while it waited; then it ran, from id 1.
    before_first_event = queued_body.split(b"\nid: 1\n")[0]
    assert b": ping\n\n" in before_first_event
    frames = parse(queued_body)
    assert [frame.id for frame in frames] == [str(n) for n in range(1, len(frames) + 1)]
    assert frames[-1].json()["agent"] == "reporter"
    assert (queued_record["status"], queued_record["end_reason"]) == ("completed", "")
    assert queued_record["started_at"] < old_record["ended_at"]  # admitted while it ran


@pytest.mark.parametrize("ending", ["cancel", "disconnect"])
async def test_a_queued_stream_ends_once_when_cancelled_or_left_while_waiting(
    clients: tuple[httpx.AsyncClient, ...], ending: str
) -> None:
    first, second = clients
    thread = new_thread()
    request = {**QUESTION, "thread_id": thread, "multitask_strategy": "enqueue"}
    queued_request = {**request, "on_disconnect": "cancel"}
    async with first.stream("POST", "/api/chat/stream", json=request) as old:
        old_id = old.headers["x-stream-session-id"]
        chunks = old.aiter_bytes()
        await read_events(chunks, b"", 1)
        async with second.stream("POST", "/api/chat/stream", json=queued_request) as queued:
            queued_id = queued.headers["x-stream-session-id"]
            waiting = queued.aiter_bytes()
            await anext(waiting)
            assert (await first.get(f"/api/sessions/{queued_id}")).json()["status"] == "queued"
            if ending == "cancel":
                cancel = await first.post(f"/api/sessions/{queued_id}/cancel")
                assert cancel.status_code == 202
                queued_body = b"".join([chunk async for chunk in waiting])
        queued_record = await final_record(first, queued_id)
        old_body = b"".join([chunk async for chunk in chunks])
    old_record = await final_record(second, old_id)

    if ending == "cancel":
        [frame] = parse(queued_body)
        assert (frame.id, frame.event) == ("1", "error")
        assert frame.json() == {
            "thread_id": thread,
            "error": "The stream was cancelled.",
            "reason": "cancelled",
        }
        assert (queued_record["status"], queued_record["end_reason"]) == (
            "cancelled",
            "user_cancel",
        )
    else:
        assert (queued_record["status"], queued_record["end_reason"]) == (
            "cancelled",
            "client_disconnect",
        )
    assert queued_record["last_event_id"] == (1 if ending == "cancel" else 0)
    # The live run was not disturbed.
    assert parse(old_body)[-1].json()["agent"] == "reporter"
    assert (old_record["status"], old_record["end_reason"]) == ("completed", "")


# deer-flow's web UI: Stop, then at once a new question on the same thread.


async def test_stop_then_ask_at_once_on_the_same_thread_under_the_default_strategy(
    clients: tuple[httpx.AsyncClient, ...],
) -> None:
    first, second = clients
    thread = new_thread()
    # As deer-flow's UI sends it: no multitask_strategy (the default applies).
    ask = {**QUESTION, "thread_id": thread, "on_disconnect": "continue"}
    async with first.stream("POST", "/api/chat/stream", json=ask) as stopped:
        stopped_id = stopped.headers["x-stream-session-id"]
        await read_events(stopped.aiter_bytes(), b"", 3)
    # Stop aborted the fetch (the run goes on: continue); the next question follows at once.
    follow_up = {**ask, "messages": [{"role": "user", "content": "And at sunset?"}]}
    async with second.stream("POST", "/api/chat/stream", json=follow_up) as response:
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
        new_id = response.headers["x-stream-session-id"]
    stopped_record = await final_record(first, stopped_id)
    new_record = await final_record(first, new_id)

    assert response.status_code == 200
    frames = parse(body)
    assert all(frame.event != "error" for frame in frames)
    assert frames[-1].json()["agent"] == "reporter"
    assert (new_record["status"], new_record["end_reason"]) == ("completed", "")
    assert (stopped_record["status"], stopped_record["end_reason"]) == ("cancelled", "superseded")
