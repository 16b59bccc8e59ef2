"""The HTTP API: what a client sends, what it gets back, and which rows exist after."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from streaming.models import StreamSession
from tests.support.asgi import post_json, request
from tests.support.sources import Probe
from tests.support.sseparse import deerflow_events, parse

pytestmark = pytest.mark.django_db(transaction=True)


async def test_chat_stream_headers_and_framing(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "abc", "messages": []})
    body = await exchange.read_all()

    assert exchange.status == 200
    assert exchange.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert exchange.headers["cache-control"] == "no-cache"
    assert exchange.headers["x-accel-buffering"] == "no"
    session = await StreamSession.objects.aget()
    assert exchange.headers["x-stream-session-id"] == str(session.id)
    assert b"\r" not in body
    first, *frames, tail = body.split(b"\n\n")
    assert first == b": stream open"
    assert tail == b""
    assert frames[0] == (
        b'id: 1\nevent: message_chunk\ndata: {"thread_id":"abc","agent":"reporter",'
        b'"id":"run-test","role":"assistant","content":"t0 "}'
    )
    assert [f.split(b"\n")[0] for f in frames] == [f"id: {i}".encode() for i in range(1, 6)]
    assert [event for event, _ in deerflow_events(body)] == ["message_chunk"] * 5
    assert session.thread_id == "abc"
    assert session.request_params["thread_id"] == "abc"
    assert session.client_address == "127.0.0.1"


async def test_default_thread_becomes_a_new_uuid(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    first = parse(await (await post_json("/api/chat/stream", {})).read_all())
    second = parse(await (await post_json("/api/chat/stream", {})).read_all())
    thread_a, thread_b = first[0].json()["thread_id"], second[0].json()["thread_id"]
    assert thread_a != thread_b
    assert len(thread_a) == 36


async def test_prose_multiline_text_is_rebuilt_exactly(probe: Probe, use_source) -> None:
    use_source("TextSource")
    prompt = "First line\nsecond line\n\nlast line, then a break\n"
    exchange = await post_json("/api/prose/generate", {"prompt": prompt, "option": "improve"})
    body = await exchange.read_all()

    frames = parse(body)
    assert all(f.event == "message" for f in frames)
    assert "".join(f.data for f in frames) == prompt
    assert b"id: 2\ndata: second line\ndata: \n\n" in body
    session = await StreamSession.objects.aget()
    assert (session.kind, session.status, session.thread_id) == ("prose", "completed", "")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"prompt": "x", "option": "shout"}, 422),
        ({"prompt": "x", "option": "zap"}, 422),
        ({"prompt": "x", "option": "zap", "command": "  "}, 422),
        ({"option": "fix"}, 422),
    ],
)
async def test_prose_option_validation(payload: dict[str, str], status: int) -> None:
    exchange = await post_json("/api/prose/generate", payload)
    body = json.loads(await exchange.read_all())
    assert exchange.status == status
    assert body["detail"]
    assert await StreamSession.objects.acount() == 0


@pytest.mark.parametrize(
    ("raw", "status", "detail"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'{"messages": "hello"}', 422, "list"),
        (b'{"max_step_num": 1000}', 422, "less than or equal"),
        (b'{"auto_accepted_plan": "maybe"}', 422, "boolean"),
        (b'{"report_style": "poetry"}', 422, "academic"),
        (b'{"mcp_settings": {"servers": {}}}', 403, "MCP server configuration is disabled"),
    ],
)
async def test_chat_bad_input(raw: bytes, status: int, detail: str) -> None:
    exchange = await request(
        "POST", "/api/chat/stream", body=raw, headers={"content-type": "application/json"}
    )
    body = await exchange.read_all()

    assert exchange.status == status
    assert exchange.headers["content-type"] == "application/json"
    assert detail in json.dumps(json.loads(body)["detail"])
    assert await StreamSession.objects.acount() == 0


@override_settings(STREAM_MAX_BODY_BYTES=1000, DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
async def test_body_over_limit_is_413() -> None:
    payload = {"messages": [{"role": "user", "content": "x" * 2000}]}
    exchange = await post_json("/api/chat/stream", payload)
    body = json.loads(await exchange.read_all())

    assert exchange.status == 413
    assert "larger than 1000 bytes" in body["detail"]
    assert await StreamSession.objects.acount() == 0


@override_settings(STREAM_API_TOKEN="s3cret")
async def test_token_required_when_configured(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    refused = await post_json("/api/chat/stream", {})
    wrong = await post_json("/api/chat/stream", {}, {"authorization": "Bearer nope"})
    accepted = await post_json("/api/chat/stream", {}, {"authorization": "Bearer s3cret"})

    assert (refused.status, wrong.status, accepted.status) == (401, 401, 200)
    assert json.loads(await refused.read_all()) == {"detail": "Missing or invalid API token."}
    assert refused.headers["www-authenticate"] == "Bearer"
    await accepted.read_all()
    assert await StreamSession.objects.acount() == 1


async def test_cors_preflight_of_deerflow_client() -> None:
    exchange = await request(
        "OPTIONS",
        "/api/chat/stream",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, cache-control",
        },
    )
    await exchange.read_all()

    assert exchange.status == 200
    assert exchange.headers["access-control-allow-origin"] == "http://localhost:3000"
    allowed = exchange.headers["access-control-allow-headers"]
    assert {"content-type", "cache-control", "authorization", "last-event-id"} <= {
        h.strip() for h in allowed.split(",")
    }


async def test_cors_refuses_other_origins() -> None:
    exchange = await request(
        "OPTIONS",
        "/api/chat/stream",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    await exchange.read_all()
    assert "access-control-allow-origin" not in exchange.headers


async def test_cors_exposes_session_header(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {}, {"origin": "http://localhost:3000"})
    await exchange.read_all()
    assert exchange.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert exchange.headers["access-control-expose-headers"] == "X-Stream-Session-Id"


async def test_config_in_deerflow_shape() -> None:
    exchange = await request("GET", "/api/config")
    body = json.loads(await exchange.read_all())
    assert exchange.status == 200
    assert set(body) == {"rag", "models"}
    assert "provider" in body["rag"]
    assert isinstance(body["models"]["basic"], list)
    assert isinstance(body["models"]["reasoning"], list)


async def test_healthz() -> None:
    exchange = await request("GET", "/healthz")
    body = json.loads(await exchange.read_all())
    assert exchange.status == 200
    assert {k: body[k] for k in ("status", "database", "channel_layer")} == {
        "status": "ok",
        "database": "ok",
        "channel_layer": "ok",
    }
    assert body["live_streams"] == 0
    assert body["tasks"] >= 1


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1"]},
        }
    }
)
async def test_healthz_503_when_channel_layer_is_down() -> None:
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        exchange = await request("GET", "/healthz")
        body = json.loads(await exchange.read_all())
    finally:
        channel_layers.backends.clear()
    assert exchange.status == 503
    assert body["channel_layer"] == "error"
    assert body["database"] == "ok"


async def test_session_detail(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "t9"})
    await exchange.read_all()
    session_id = exchange.headers["x-stream-session-id"]

    detail = await request("GET", f"/api/sessions/{session_id}")
    body = json.loads(await detail.read_all())
    assert detail.status == 200
    assert body["id"] == session_id
    assert (body["status"], body["end_reason"], body["thread_id"]) == ("completed", "", "t9")
    assert body["events_sent"] == 5

    missing = await request("GET", "/api/sessions/00000000-0000-0000-0000-000000000000")
    assert missing.status == 404
    assert json.loads(await missing.read_all()) == {"detail": "No such session."}


async def test_demo_interrupt_then_accepted_follow_up_on_the_wire() -> None:
    question = {"role": "user", "content": "How do bees navigate?"}
    first = await post_json("/api/chat/stream", {"thread_id": "bees", "messages": [question]})
    planned = deerflow_events(await first.read_all())
    ack = {"role": "user", "content": "Great! Let's get started."}
    follow = {"thread_id": "bees", "messages": [ack], "interrupt_feedback": "accepted"}
    second = await post_json("/api/chat/stream", follow)
    researched = deerflow_events(await second.read_all())

    names = [name for name, _ in planned]
    assert names[-1] == "interrupt"
    assert planned[-2][1]["agent"] == "planner"
    assert planned[-2][1]["finish_reason"] == "stop"
    assert planned[-1][1]["options"] == [
        {"text": "Edit plan", "value": "edit_plan"},
        {"text": "Start research", "value": "accepted"},
    ]
    assert "planner" not in {data.get("agent") for _, data in researched}
    called = {c["id"] for name, d in researched if name == "tool_calls" for c in d["tool_calls"]}
    answered = {d["tool_call_id"] for name, d in researched if name == "tool_call_result"}
    assert answered
    assert answered <= called
    report = "".join(d.get("content", "") for _, d in researched if d.get("agent") == "reporter")
    assert "bees navigate" in report
    assert all(d["thread_id"] == "bees" for _, d in planned + researched)
    statuses = [s async for s in StreamSession.objects.values_list("status", flat=True)]
    assert statuses == ["completed", "completed"]


@override_settings(STREAM_MAX_STREAMS_PER_CLIENT=2, STREAM_RETRY_AFTER_SECONDS=7)
async def test_too_many_streams_from_one_client_is_429(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    live = [await post_json("/api/chat/stream", {}) for _ in range(2)]
    refused = await post_json("/api/chat/stream", {})
    body = json.loads(await refused.read_all())

    assert [e.status for e in live] == [200, 200]
    assert refused.status == 429
    assert refused.headers["retry-after"] == "7"
    assert body == {"detail": "Too many live streams from this client; retry later."}
    assert await StreamSession.objects.acount() == 2
    probe.gate.set()
    for exchange in live:
        await exchange.read_all()
    again = await post_json("/api/chat/stream", {})  # the slots are free again
    assert again.status == 200
    await again.read_all()


@override_settings(STREAM_MAX_STREAMS=1)
async def test_worker_at_its_limit_is_503(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    live = await post_json("/api/chat/stream", {})
    refused = await post_json("/api/prose/generate", {"prompt": "x", "option": "fix"})

    assert refused.status == 503
    assert refused.headers["retry-after"] == "5"
    assert json.loads(await refused.read_all()) == {
        "detail": "The server is at its limit of live streams; retry later."
    }
    probe.gate.set()
    await live.read_all()


async def test_database_failure_at_open_is_a_json_503(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(**_: object) -> None:
        raise OSError("database went away")

    monkeypatch.setattr("streaming.records.open_session", broken)
    exchange = await post_json("/api/chat/stream", {})
    body = json.loads(await exchange.read_all())

    assert exchange.status == 503
    assert exchange.headers["retry-after"] == "5"
    assert body == {"detail": "The server cannot open streams right now."}
    assert "database went away" in caplog.text
