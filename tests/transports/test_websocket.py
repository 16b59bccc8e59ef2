"""The WebSocket transport: start, events, cancel, disconnect, protocol errors."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.utils import timezone

from project.asgi import application
from streaming.models import EndReason, Status, StreamSession
from tests.support.asgi import request
from tests.support.sources import Probe

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10


async def connect(path: str = "/ws/stream/", origin: bytes | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(TIMEOUT)
    assert connected
    return communicator


async def receive_until_end(ws: WebsocketCommunicator) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await ws.receive_json_from(TIMEOUT)
        messages.append(message)
        if message["type"] == "end":
            return messages


async def test_chat_over_websocket(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    ws = await connect()
    await ws.send_json_to({"type": "chat.start", "request": {"thread_id": "w1"}})
    messages = await receive_until_end(ws)
    await ws.disconnect()

    session = await StreamSession.objects.aget()
    assert messages[0] == {"type": "session", "session_id": str(session.id)}
    events = messages[1:-1]
    assert [m["id"] for m in events] == [1, 2, 3, 4, 5]
    assert {m["event"] for m in events} == {"message_chunk"}
    assert events[0]["data"]["thread_id"] == "w1"
    assert messages[-1] == {"type": "end", "status": "completed", "reason": ""}
    assert (session.transport, session.status, session.events_sent) == ("websocket", "completed", 5)


async def test_prose_over_websocket(probe: Probe, use_source) -> None:
    use_source("TextSource")
    ws = await connect()
    request = {"prompt": "line one\nline two", "option": "fix"}
    await ws.send_json_to({"type": "prose.start", "request": request})
    messages = await receive_until_end(ws)
    await ws.disconnect()

    texts = [m["data"]["text"] for m in messages if m["type"] == "event"]
    assert "".join(texts) == "line one\nline two"
    assert {m["event"] for m in messages if m["type"] == "event"} == {""}


async def test_cancel_message_ends_the_stream_as_user_cancel(
    probe: Probe, use_source, caplog: pytest.LogCaptureFixture
) -> None:
    use_source("IdleSource")
    caplog.set_level(logging.INFO, logger="streaming")
    ws = await connect()
    await ws.send_json_to({"type": "chat.start", "request": {"thread_id": "w2"}})
    assert (await ws.receive_json_from(TIMEOUT))["type"] == "session"
    assert (await ws.receive_json_from(TIMEOUT))["id"] == 1

    await ws.send_json_to({"type": "cancel"})
    messages = await receive_until_end(ws)

    assert messages[0]["event"] == "error"
    assert messages[0]["data"] == {
        "thread_id": "w2",
        "error": "The stream was cancelled.",
        "reason": "cancelled",
    }
    assert messages[-1] == {"type": "end", "status": "cancelled", "reason": "user_cancel"}
    assert probe.cleanup_reason == "cancelled"
    session = await StreamSession.objects.aget()
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.USER_CANCEL)
    # Logged as every user cancel is, whichever way it came.
    assert f"Stream {session.id}: cancel requested" in caplog.messages
    # The socket stays open for the next stream.
    probe.gate.set()
    await ws.send_json_to({"type": "chat.start", "request": {}})
    assert (await receive_until_end(ws))[-1]["status"] == "completed"
    await ws.disconnect()


async def test_closing_the_socket_cancels_the_stream(
    probe: Probe, caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("CountingSource")
    probe.events, probe.delay = 1000, 0.005
    ws = await connect()
    await ws.send_json_to({"type": "chat.start", "request": {}})
    assert (await ws.receive_json_from(TIMEOUT))["type"] == "session"
    for _ in range(3):
        await ws.receive_json_from(TIMEOUT)

    await ws.disconnect()

    assert probe.cleaned.is_set()
    assert probe.cleanup_reason == "cancelled"
    session = await StreamSession.objects.aget()
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    assert session.events_sent >= 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_protocol_errors_keep_the_socket_open(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    ws = await connect()
    await ws.send_to(text_data="{not json")
    assert await ws.receive_json_from(TIMEOUT) == {
        "type": "error",
        "detail": "Message is not valid JSON.",
    }
    await ws.send_to(text_data="[1]")
    assert (await ws.receive_json_from(TIMEOUT))["detail"] == "Message must be a JSON object."
    await ws.send_json_to({"type": "dance"})
    assert (await ws.receive_json_from(TIMEOUT))["detail"] == "Unknown message type: 'dance'."
    await ws.send_json_to({"type": "cancel"})
    assert (await ws.receive_json_from(TIMEOUT))["detail"] == "No stream is running."
    await ws.send_json_to({"type": "chat.start", "request": {"max_step_num": "many"}})
    invalid = await ws.receive_json_from(TIMEOUT)
    assert invalid["type"] == "error"
    assert invalid["detail"][0]["loc"] == ["body", "max_step_num"]
    await ws.send_json_to({"type": "prose.start", "request": {"prompt": "x", "option": "zap"}})
    assert "needs a non-empty 'command'" in str((await ws.receive_json_from(TIMEOUT))["detail"])
    assert await StreamSession.objects.acount() == 0

    await ws.send_json_to({"type": "chat.start", "request": {}})
    assert (await ws.receive_json_from(TIMEOUT))["type"] == "session"
    await ws.send_json_to({"type": "chat.start", "request": {}})
    second = await ws.receive_json_from(TIMEOUT)
    if second["type"] == "event":  # the first event may come first
        second = await ws.receive_json_from(TIMEOUT)
    assert second == {"type": "error", "detail": "A stream is already running on this socket."}
    assert await StreamSession.objects.acount() == 1
    await ws.disconnect()


@override_settings(STREAM_API_TOKEN="tok")
async def test_token_required_when_configured() -> None:
    refused = WebsocketCommunicator(application, "/ws/stream/")
    connected, code = await refused.connect(TIMEOUT)
    assert not connected
    assert code == 4401

    ws = await connect("/ws/stream/?token=tok")
    await ws.disconnect()


async def test_origins_are_checked() -> None:
    evil = WebsocketCommunicator(application, "/ws/stream/", [(b"origin", b"http://evil.example")])
    connected, _ = await evil.connect(TIMEOUT)
    assert not connected

    for origin in (b"http://localhost:3000", b"http://127.0.0.1:8000"):
        ws = await connect(origin=origin)
        await ws.disconnect()


@override_settings(STREAM_MAX_BODY_BYTES=100)
async def test_message_over_the_size_limit_is_refused() -> None:
    ws = await connect()
    await ws.send_json_to({"type": "chat.start", "request": {"thread_id": "x" * 200}})
    assert await ws.receive_json_from(TIMEOUT) == {
        "type": "error",
        "detail": "Message is larger than 100 bytes.",
    }
    await ws.send_json_to({"type": "cancel"})  # still open
    assert (await ws.receive_json_from(TIMEOUT))["detail"] == "No stream is running."
    await ws.disconnect()
    assert await StreamSession.objects.acount() == 0


async def test_message_nested_too_deeply_is_refused() -> None:
    ws = await connect()
    await ws.send_to(text_data="[" * 100_000 + "]" * 100_000)
    assert await ws.receive_json_from(TIMEOUT) == {
        "type": "error",
        "detail": "Message is not valid JSON.",
    }
    await ws.disconnect()


async def test_mcp_settings_refused_as_over_http() -> None:
    ws = await connect()
    await ws.send_json_to({"type": "chat.start", "request": {"mcp_settings": {"servers": {}}}})
    answer = await ws.receive_json_from(TIMEOUT)
    await ws.disconnect()

    assert answer["type"] == "error"
    assert answer["detail"].startswith("MCP server configuration is disabled.")
    assert await StreamSession.objects.acount() == 0


BAD_EVENT_IDS: list[tuple[Any, str]] = [
    # (the WebSocket's JSON value, the same id as an HTTP header)
    (-1, "-1"),
    (10**30, "1" + "0" * 30),
    (10**18, str(10**18)),
    ("1e3", "1e3"),
    ("²", "²"),
    ("+5", "+5"),
]


@pytest.mark.parametrize(("ws_value", "header"), BAD_EVENT_IDS)
async def test_both_resumes_refuse_the_same_ids_with_the_same_text(
    ws_value: Any, header: str
) -> None:
    session = await StreamSession.objects.acreate(
        kind="chat", transport="sse", started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    over_http = await request(
        "GET", f"/api/sessions/{session.id}/stream", headers={"Last-Event-ID": header}
    )
    http_detail = json.loads(await over_http.read_all())["detail"]
    ws = await connect()
    await ws.send_json_to(
        {"type": "resume", "session_id": str(session.id), "last_event_id": ws_value}
    )
    ws_error = await ws.receive_json_from(TIMEOUT)
    await ws.disconnect()

    assert over_http.status == 422
    assert ws_error == {"type": "error", "detail": http_detail}
    assert http_detail == "Last-Event-ID must be a non-negative integer."


@pytest.mark.parametrize("value", [True, False, None, 1.5, [1], {"id": 1}])
async def test_the_websocket_resume_refuses_ids_that_are_not_integers(value: Any) -> None:
    ws = await connect()
    await ws.send_json_to(
        {"type": "resume", "session_id": str(uuid.uuid4()), "last_event_id": value}
    )
    assert await ws.receive_json_from(TIMEOUT) == {
        "type": "error",
        "detail": "Last-Event-ID must be a non-negative integer.",
    }
    await ws.disconnect()


@pytest.mark.parametrize(("ws_value", "header"), [(0, "0"), (7, "007"), ("7", "7")])
async def test_both_resumes_accept_the_same_ids(ws_value: Any, header: str) -> None:
    unknown = uuid.uuid4()
    over_http = await request(
        "GET", f"/api/sessions/{unknown}/stream", headers={"Last-Event-ID": header}
    )
    ws = await connect()
    await ws.send_json_to({"type": "resume", "session_id": str(unknown), "last_event_id": ws_value})
    ws_error = await ws.receive_json_from(TIMEOUT)
    await ws.disconnect()

    # Accepted as an id, so the answer is about the session: it does not exist.
    assert over_http.status == 404
    assert ws_error == {"type": "error", "detail": "No such session."}
