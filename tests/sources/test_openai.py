"""The `openai` source against a real OpenAI-compatible server on loopback, through the SSE view."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from prometheus_client import REGISTRY

from project.asgi import application
from streaming.models import EndReason, Status, StreamSession
from tests.support.asgi import HttpExchange, post_json, request
from tests.support.fake_openai import (
    FakeOpenAI,
    Reply,
    answer,
    chunk,
    endless,
    error,
    silent,
    stream,
)
from tests.support.sseparse import deerflow_events, parse

pytestmark = pytest.mark.django_db(transaction=True)

API_KEY = "sk-test-SECRET-4f9a"
QUESTION = {"role": "user", "content": "What is the history of tea?"}
PROSE_OPTIONS = ("continue", "improve", "shorter", "longer", "fix", "zap")


@contextlib.asynccontextmanager
async def upstream(*replies: Reply, **settings: Any) -> AsyncIterator[FakeOpenAI]:
    """Serve `replies` on loopback and point the openai sources at them."""
    async with FakeOpenAI(*replies).running() as fake:
        configured = {
            "STREAM_CHAT_SOURCE": "openai",
            "STREAM_PROSE_SOURCE": "openai",
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": API_KEY,
            "LLM_MODEL": "fake-model",
            "OPENAI_MAX_RETRIES": 0,
            "OPENAI_TIMEOUT_SECONDS": 5,
            "STREAM_IDLE_TIMEOUT_SECONDS": 5,
        }
        with override_settings(**(configured | settings)):
            yield fake


async def session_of(exchange: HttpExchange) -> StreamSession:
    return await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])


async def test_chat_streams_the_answer_as_one_agent_message() -> None:
    conversation = [
        QUESTION,
        {"role": "assistant", "content": "Which period?"},
        {"role": "user", "content": [{"type": "text", "text": "All of it"}]},
    ]
    reply = stream(answer("Tea is ", "very old.", reasoning=("Think ", "first.")))
    async with upstream(reply) as fake:
        exchange = await post_json(
            "/api/chat/stream", {"thread_id": "t-1", "locale": "fr-FR", "messages": conversation}
        )
        events = deerflow_events(await exchange.read_all())

    assert [name for name, _ in events] == ["message_chunk"] * 5
    assert [
        (data.get("reasoning_content"), data.get("content"), data.get("finish_reason"))
        for _, data in events
    ] == [
        ("Think ", None, None),
        ("first.", None, None),
        (None, "Tea is ", None),
        (None, "very old.", None),
        (None, None, "stop"),
    ]
    assert {(d["thread_id"], d["agent"], d["role"]) for _, d in events} == {
        ("t-1", "reporter", "assistant")
    }
    [message_id] = {data["id"] for _, data in events}
    assert message_id.startswith("run-")
    session = await session_of(exchange)
    assert (session.status, session.events_sent) == (Status.COMPLETED, 5)
    [seen] = fake.connections
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert (seen.body["model"], seen.body["stream"]) == ("fake-model", True)
    assert seen.body["messages"][0]["role"] == "system"
    assert "fr-FR" in seen.system_prompt()
    assert seen.body["messages"][1:] == [
        QUESTION,
        {"role": "assistant", "content": "Which period?"},
        {"role": "user", "content": [{"type": "text", "text": "All of it"}]},
    ]
    assert seen.closed.is_set()


async def test_the_time_to_the_models_first_token_is_observed() -> None:
    first_tokens = ("deerflow_upstream_first_token_seconds_count", {"source": "openai"})
    before = REGISTRY.get_sample_value(*first_tokens) or 0
    async with upstream(stream(answer("Tea ", "is old."))):
        await (await post_json("/api/chat/stream", {"messages": [QUESTION]})).read_all()
    assert REGISTRY.get_sample_value(*first_tokens) == before + 1


async def test_chat_agent_name_and_models_come_from_settings() -> None:
    async with upstream(stream(answer("Hi.")), STREAM_OPENAI_AGENT="coordinator"):
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        events = deerflow_events(await exchange.read_all())
        config = await request("GET", "/api/config")
        config_body = json.loads(await config.read_all())

    assert {data["agent"] for _, data in events} == {"coordinator"}
    assert config_body["models"] == {"basic": ["fake-model"], "reasoning": []}


async def test_prose_streams_the_text_with_each_options_own_instructions() -> None:
    async with upstream(stream(answer("Better\n", "text."))) as fake:
        for option in PROSE_OPTIONS:
            exchange = await post_json(
                "/api/prose/generate",
                {"prompt": "The text.", "option": option, "command": "make it rhyme"},
            )
            frames = parse(await exchange.read_all())
            assert "".join(frame.data for frame in frames) == "Better\ntext."

    assert len({seen.system_prompt() for seen in fake.connections}) == len(PROSE_OPTIONS)
    user_texts = [seen.body["messages"][1]["content"] for seen in fake.connections]
    assert user_texts[:-1] == ["The text."] * (len(PROSE_OPTIONS) - 1)
    assert "make it rhyme" in user_texts[-1]
    assert "The text." in user_texts[-1]


async def test_client_disconnect_closes_the_upstream_connection_at_once() -> None:
    async with upstream(endless(interval=0.005)) as fake:
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        await exchange.read_until(b"id: 3\n")
        [seen] = fake.connections
        hung_up = asyncio.get_running_loop().time()
        await exchange.disconnect()
        await asyncio.wait_for(seen.finished.wait(), 5)  # the fake stopped sending

    assert seen.closed_at - hung_up < 0.1
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    assert 3 <= session.events_sent <= seen.chunks_sent


async def test_cancel_from_the_api_closes_the_upstream_connection() -> None:
    async with upstream(endless(interval=0.005)) as fake:
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        await exchange.read_until(b"id: 3\n")
        cancel = await request(
            "POST", f"/api/sessions/{exchange.headers['x-stream-session-id']}/cancel"
        )
        await cancel.read_all()
        frames = parse(await exchange.read_all())
        [seen] = fake.connections

    assert cancel.status == 202
    assert frames[-1].json()["reason"] == "cancelled"
    assert seen.closed.is_set()
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.USER_CANCEL)


async def test_deadline_closes_the_upstream_connection() -> None:
    async with upstream(endless(interval=0.005), STREAM_TIMEOUT_SECONDS=0.3) as fake:
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        frames = parse(await exchange.read_all())
        [seen] = fake.connections

    assert frames[-1].json()["reason"] == "timeout"
    assert seen.closed.is_set()
    session = await session_of(exchange)
    assert session.status == Status.TIMED_OUT


HALF = chunk({"content": "Half "})
FAILURES = [
    pytest.param(
        error(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}}),
        {},
        "The model server refused the API key.",
        "openai.AuthenticationError",
        id="401",
    ),
    pytest.param(
        error(429, {"error": {"message": "Rate limit reached for fake-model"}}),
        {},
        "The model server is rate limiting requests.",
        "openai.RateLimitError",
        id="429",
    ),
    pytest.param(
        error(503, {"error": {"message": "The engine is overloaded"}}),
        {},
        "The model server failed (HTTP 503).",
        "openai.InternalServerError",
        id="503",
    ),
    pytest.param(
        error(404, {"error": {"message": "The model fake-model does not exist"}}),
        {},
        "The model server rejected the request (HTTP 404).",
        "openai.NotFoundError",
        id="404",
    ),
    pytest.param(
        stream([HALF, "{not json"]),
        {},
        "The model server sent a malformed response.",
        "json.decoder.JSONDecodeError",
        id="not-json",
    ),
    pytest.param(
        stream([HALF, '{"object": "chat.completion.chunk"}']),
        {},
        "The model server sent a malformed response.",
        "a chunk without choices",
        id="not-a-chunk",
    ),
    pytest.param(
        stream([HALF, json.dumps({"error": {"message": "upstream model crashed"}})]),
        {},
        "The model server reported an error.",
        "openai.APIError: upstream model crashed",
        id="error-mid-stream",
    ),
    pytest.param(
        stream([HALF], then="drop"),
        {},
        "The model server broke off the stream.",
        "openai.APIConnectionError",
        id="dropped",
    ),
    pytest.param(
        stream([HALF], then="end"),
        {},
        "The model server broke off the stream.",
        "without a finish_reason",
        id="ended-early",
    ),
]


@pytest.mark.parametrize(("reply", "settings", "public", "detail"), FAILURES)
async def test_upstream_failure_ends_with_a_clean_error_frame_and_a_failed_row(
    reply: Reply, settings: dict[str, Any], public: str, detail: str
) -> None:
    async with upstream(reply, **settings) as fake:
        exchange = await post_json("/api/chat/stream", {"thread_id": "t-9", "messages": [QUESTION]})
        body = await exchange.read_all()
        [seen] = fake.connections

    events = deerflow_events(body)
    assert events[-1] == ("error", {"thread_id": "t-9", "error": public, "reason": "error"})
    assert {data.get("content") for _, data in events[:-1]} <= {"Half "}
    assert API_KEY.encode() not in body
    assert b"127.0.0.1" not in body
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.FAILED, EndReason.ERROR)
    assert public in session.error
    assert detail in session.error
    assert seen.closed.is_set()


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(silent, id="no-answer"),
        pytest.param(stream([HALF], then="stall"), id="stops-mid-answer"),
    ],
)
async def test_a_silent_model_server_is_ended_by_the_stall_watchdog(reply: Reply) -> None:
    # Heartbeats flow to the client meanwhile; they do not keep the dead upstream alive.
    quiet = {"STREAM_IDLE_TIMEOUT_SECONDS": 0.3, "STREAM_HEARTBEAT_SECONDS": 0.05}
    async with upstream(reply, **quiet) as fake:
        exchange = await post_json("/api/chat/stream", {"thread_id": "t-7", "messages": [QUESTION]})
        body = await exchange.read_all()
        [seen] = fake.connections

    assert b"\n: ping\n" in b"\n" + body
    events = deerflow_events(body)
    assert events[-1] == (
        "error",
        {
            "thread_id": "t-7",
            "error": "The stream stopped: its source sent nothing for too long.",
            "reason": "stalled",
        },
    )
    assert {data.get("content") for _, data in events[:-1]} <= {"Half "}
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.FAILED, EndReason.STALLED)
    assert session.last_event_id == len(events)
    assert seen.closed.is_set()  # the request to the model was closed, not left open


async def test_unreachable_server() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with upstream(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"):
        exchange = await post_json("/api/chat/stream", {"thread_id": "t-8", "messages": [QUESTION]})
        events = deerflow_events(await exchange.read_all())

    assert events == [
        (
            "error",
            {
                "thread_id": "t-8",
                "error": "The model server could not be reached.",
                "reason": "error",
            },
        )
    ]
    session = await session_of(exchange)
    assert session.status == Status.FAILED
    assert "openai.APIConnectionError" in session.error


async def test_retries_happen_only_before_the_stream_begins() -> None:
    overloaded = error(503, {"error": {"message": "busy"}}, headers={"retry-after-ms": "1"})
    async with upstream(overloaded, stream(answer("Fine.")), OPENAI_MAX_RETRIES=2) as fake:
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        events = deerflow_events(await exchange.read_all())
    assert [data.get("content") for _, data in events] == ["Fine.", None]
    assert len(fake.connections) == 2

    async with upstream(stream([HALF], then="drop"), OPENAI_MAX_RETRIES=2) as fake:
        exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
        events = deerflow_events(await exchange.read_all())
    assert events[-1][1]["error"] == "The model server broke off the stream."
    assert len(fake.connections) == 1


async def test_chat_over_the_websocket_and_closing_it_closes_the_upstream() -> None:
    async with upstream(stream(answer("Tea ", "is old.")), endless(interval=0.01)) as fake:
        ws = WebsocketCommunicator(application, "/ws/stream/")
        assert (await ws.connect(10))[0]
        await ws.send_json_to({"type": "chat.start", "request": {"messages": [QUESTION]}})
        messages = [await ws.receive_json_from(10)]
        while messages[-1]["type"] != "end":
            messages.append(await ws.receive_json_from(10))
        await ws.send_json_to({"type": "chat.start", "request": {"messages": [QUESTION]}})
        await ws.receive_json_from(10)  # the second stream's session
        await ws.receive_json_from(10)  # its first event: the endless upstream is streaming
        await ws.disconnect()
        second = fake.connections[1]
        await asyncio.wait_for(second.closed.wait(), 1)

    events = [m for m in messages if m["type"] == "event"]
    assert [m["data"].get("content") for m in events] == ["Tea ", "is old.", None]
    assert events[-1]["data"]["finish_reason"] == "stop"
    assert messages[-1] == {"type": "end", "status": "completed", "reason": ""}
    rows = [s async for s in StreamSession.objects.order_by("started_at")]
    assert [(r.transport, r.status, r.end_reason) for r in rows] == [
        ("websocket", "completed", ""),
        ("websocket", "cancelled", "client_disconnect"),
    ]
