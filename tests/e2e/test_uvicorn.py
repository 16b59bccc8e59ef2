"""End to end on a real uvicorn, run as production would run it: SSE and WebSocket
streams, clients that hang up, and shutdown through the ASGI lifespan."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import websockets

from tests.support.live import (
    LiveServer,
    hang_up_after,
    log_problems,
    migrate,
    open_sse_streams,
    serve,
    server_env,
    session_states,
    terminate,
    wait_for_session,
    wait_started,
)
from tests.support.sseparse import deerflow_events, parse

QUESTION = {"messages": [{"role": "user", "content": "What is quantum computing?"}]}
CHAT = {**QUESTION, "auto_accepted_plan": True}
# One event as the contract frames it: id, a deer-flow event name, one line of JSON.
FRAME = re.compile(
    r"id: (?P<id>[1-9][0-9]*)\n"
    r"event: (?P<event>message_chunk|tool_calls|tool_call_chunks|tool_call_result|interrupt)\n"
    r"data: (?P<data>\{[^\n]*\})"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("uvicorn")
    env = server_env(tmp, STREAM_DEMO_DELAY_MS="2")
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws/stream/"


async def ws_chat(url: str, request: dict[str, Any], started: asyncio.Future[None]) -> list[Any]:
    """Run one chat over a WebSocket; return its messages up to and with `end`."""
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "chat.start", "request": request}))
        messages = [json.loads(await ws.recv())]
        started.set_result(None)
        while messages[-1]["type"] != "end":
            messages.append(json.loads(await ws.recv()))
    return messages


async def test_whole_chat_streams_with_the_exact_framing(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat/stream", json=CHAT) as response:
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        session_id = response.headers["x-stream-session-id"]
        record = await wait_for_session(client, session_id)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    text = body.decode()
    assert text.startswith(": stream open\n\n")
    assert text.endswith("\n\n")
    assert "\r" not in text
    blocks = text.removeprefix(": stream open\n\n").removesuffix("\n\n").split("\n\n")
    frames = [FRAME.fullmatch(block) for block in blocks]
    assert None not in frames, [b for b, f in zip(blocks, frames, strict=True) if f is None]
    matched = [f for f in frames if f is not None]
    assert [int(f["id"]) for f in matched] == list(range(1, len(blocks) + 1))
    for frame in matched:  # compact and not ASCII-escaped, as deer-flow's server writes it
        data = json.loads(frame["data"])
        assert frame["data"] == json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    events = deerflow_events(body)
    assert len(events) >= 30
    assert events[-1][1]["agent"] == "reporter"
    assert events[-1][1]["finish_reason"] == "stop"
    assert (record["status"], record["end_reason"]) == ("completed", "")
    assert record["events_sent"] == record["last_event_id"] == len(events)
    assert log_problems(server.log_text()) == []


async def test_client_that_hangs_up_is_recorded_as_disconnect(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        record = await hang_up_after(client, CHAT, 3)
        session_id = record["id"]

    assert (record["status"], record["end_reason"]) == ("cancelled", "client_disconnect")
    assert 3 <= int(record["events_sent"]) <= int(record["last_event_id"])
    log = server.log_text()
    assert log_problems(log) == []
    assert f"Stream {session_id} ended: client disconnected" in log


async def test_websocket_chat_streams_the_same_events_as_sse(server: LiveServer) -> None:
    started = asyncio.get_running_loop().create_future()
    messages = await ws_chat(ws_url(server), CHAT, started)
    session_id = messages[0]["session_id"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        record = await wait_for_session(client, session_id)
        replay = parse((await client.get(f"/api/sessions/{session_id}/stream")).content)

    assert messages[0] == {"type": "session", "session_id": session_id}
    events = messages[1:-1]
    assert {m["type"] for m in events} == {"event"}
    assert [(m["id"], m["event"], m["data"]) for m in events] == [
        (int(f.id or 0), f.event, f.json()) for f in replay
    ]
    assert len(events) >= 30
    assert events[-1]["data"]["agent"] == "reporter"
    assert messages[-1] == {"type": "end", "status": "completed", "reason": ""}
    assert (record["transport"], record["status"]) == ("websocket", "completed")
    assert record["events_sent"] == len(events)


async def test_websocket_closed_mid_stream_is_recorded_as_disconnect(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "chat.start", "request": CHAT}))
        session_id = json.loads(await ws.recv())["session_id"]
        for _ in range(3):
            assert json.loads(await ws.recv())["type"] == "event"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        record = await wait_for_session(client, session_id)

    assert (record["status"], record["end_reason"]) == ("cancelled", "client_disconnect")
    assert log_problems(server.log_text()) == []


@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGTERM,
        signal.SIGINT,
    ],
    ids=["SIGTERM", "SIGINT"],
)
async def test_stop_signal_interrupts_every_live_stream(
    tmp_path: Path, signum: signal.Signals
) -> None:
    env = server_env(tmp_path, STREAM_DEMO_DELAY_MS="50")
    migrate(env)
    with serve(env, tmp_path / "uvicorn.log", "uvicorn") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            asyncio.TaskGroup() as group,
        ):
            sse = await open_sse_streams(client, CHAT, 10, group)
            started = [asyncio.get_running_loop().create_future() for _ in range(3)]
            ws = [group.create_task(ws_chat(ws_url(server), CHAT, s)) for s in started]
            await wait_started(ws, started)
            await terminate(server, within=10, signum=signum)  # Railway drains for 15 s
            bodies = await asyncio.gather(*sse)
            chats = await asyncio.gather(*ws)

    assert session_states(tmp_path / "live.sqlite3") == [("interrupted", "server_shutdown")] * 13
    for body in bodies:
        assert parse(body)[-1].event == "error"
        assert parse(body)[-1].json()["reason"] == "shutdown"
    for messages in chats:
        assert messages[-2]["event"] == "error"
        assert messages[-2]["data"]["reason"] == "shutdown"
        assert messages[-1] == {"type": "end", "status": "interrupted", "reason": "server_shutdown"}
    log = server.log_text()
    assert log_problems(log) == []
    assert "client disconnected" not in log


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    """Return the next HTTP event the server sent on a raw connection."""
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await reader.read(65536))
    return event


async def test_a_stream_requested_while_shutting_down_does_not_run(tmp_path: Path) -> None:
    env = server_env(tmp_path, STREAM_DEMO_DELAY_MS="50")
    migrate(env)
    body = json.dumps(CHAT).encode()
    with serve(env, tmp_path / "uvicorn.log", "uvicorn") as server:
        host, port = server.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        conn = h11.Connection(h11.CLIENT)
        try:
            async with (
                httpx.AsyncClient(base_url=server.url, timeout=30) as client,
                asyncio.TaskGroup() as group,
            ):
                [live] = await open_sse_streams(client, CHAT, 1, group)
                # A request in flight: the application is reading its body (uvicorn says
                # "100 Continue" then), which the client sends once the shutdown has begun.
                head = h11.Request(
                    method="POST",
                    target="/api/chat/stream",
                    headers=[
                        ("Host", f"{host}:{port}"),
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("Expect", "100-continue"),
                    ],
                )
                writer.write(conn.send(head) or b"")
                assert (await next_event(conn, reader)).status_code == 100
                server.process.send_signal(signal.SIGTERM)
                first = await live  # ends with its shutdown frame: the live runs are stopped
                writer.write(conn.send(h11.Data(data=body)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                answer = await next_event(conn, reader)
                late = b""
                while b"\ndata: " not in late or not late.endswith(b"\n\n"):
                    data = await next_event(conn, reader)
                    if not isinstance(data, h11.Data):
                        break
                    late += data.data
        finally:
            writer.close()
        await asyncio.to_thread(server.process.wait, 10)

    assert parse(first)[-1].json()["reason"] == "shutdown"
    # Refused like any stream the server cannot run, or stopped at once like the others.
    assert answer.status_code == 503 or parse(late)[0].json().get("reason") == "shutdown"
    assert set(session_states(tmp_path / "live.sqlite3")) == {("interrupted", "server_shutdown")}
    assert log_problems(server.log_text()) == []
