"""Completion webhooks on a real uvicorn, received by a loopback receiver that verifies
their signatures with the Standard Webhooks reference package."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.accounts import PASSWORD, manage
from tests.support.htmlpage import Page, text
from tests.support.live import (
    LiveServer,
    log_problems,
    migrate,
    serve,
    server_env,
    terminate,
    wait_for_session,
)
from tests.support.sseparse import parse
from tests.support.webhook_receiver import HANG, SECRET, webhook_receiver

CHAT = {"messages": [{"role": "user", "content": "What is a webhook?"}], "auto_accepted_plan": True}
PROSE = {"prompt": "Deer cross the road at dusk.", "option": "improve"}
ADMIN = "webhook-admin"
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# How long the admin page may take to show an attempt the receiver already answered.
RECORD_SECONDS = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("webhooks")
    env = server_env(
        tmp,
        # Slow enough that a cancel sent after the first event lands well before the end.
        STREAM_DEMO_DELAY_MS="30",
        STREAM_WEBHOOK_SECRET=SECRET,
        STREAM_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        # Far above any pause of a busy machine: only a receiver that hangs reaches it.
        STREAM_WEBHOOK_TIMEOUT_SECONDS="120",
    )
    migrate(env)
    code = (
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser({ADMIN!r}, password={PASSWORD!r})\n"
    )
    manage(env, "shell", "-c", code)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live
    assert log_problems(live.log_text()) == []  # failed deliveries are warnings, not errors


@contextlib.asynccontextmanager
async def admin_client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client signed in to the admin."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        page = await client.get("/admin/login/")
        match = _CSRF_FIELD.search(page.text)
        assert match, page.text
        form = {"username": ADMIN, "password": PASSWORD, "csrfmiddlewaretoken": match[1]}
        answer = await client.post("/admin/login/", data={**form, "next": "/admin/"})
        assert answer.status_code == 302, answer.text
        yield client


async def admin_attempts(server: LiveServer, session_id: str, count: int) -> list[list[str]]:
    """Return the webhook attempts the session's admin page shows, once it shows `count`.

    Each as [attempt, status, error]. The attempt is recorded just after the receiver
    answered it: poll the page (bounded) until the row is there.
    """
    async with admin_client(server) as client:
        deadline = asyncio.get_running_loop().time() + RECORD_SECONDS
        while True:
            response = await client.get(f"/admin/streaming/streamsession/{session_id}/change/")
            assert response.status_code == 200
            page = Page(response.content)
            rows = [
                [text(cell) for cell in row.children if getattr(cell, "name", "") == "td"]
                for row in page.all(tag="tr", cls="has_original", inside="webhook_deliveries-group")
            ]
            if len(rows) >= count or asyncio.get_running_loop().time() > deadline:
                return [[row[1], row[4], row[5]] for row in rows]
            await asyncio.sleep(0.05)  # A row another process writes: nothing to await.


async def test_a_completed_stream_delivers_its_final_record_once_signed(
    server: LiveServer,
) -> None:
    async with (
        webhook_receiver() as receiver,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        request = {**CHAT, "webhook": receiver.url}
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            body = await response.aread()
        session_id = response.headers["x-stream-session-id"]
        hook = await receiver.next()
        record = await wait_for_session(client, session_id)
        attempts = await admin_attempts(server, session_id, 1)

    assert response.status_code == 200
    assert parse(body)[-1].event == "message_chunk"
    assert hook.problem == ""
    assert hook.verified == record  # the body is the record GET /api/sessions/<id> answers
    assert (record["status"], record["end_reason"]) == ("completed", "")
    assert hook.headers["webhook-id"] == session_id
    assert hook.headers["content-type"] == "application/json"
    assert attempts == [["1", "200", "-"]]
    assert len(receiver.received) == 1


async def test_a_cancelled_websocket_stream_delivers_too(server: LiveServer) -> None:
    ws_url = server.url.replace("http://", "ws://") + "/ws/stream/"
    async with webhook_receiver() as receiver:
        async with websockets.connect(ws_url) as ws:
            request = {**CHAT, "webhook": receiver.url}
            await ws.send(json.dumps({"type": "chat.start", "request": request}))
            messages = [json.loads(await ws.recv())]
            messages.append(json.loads(await ws.recv()))  # the first event: it runs
            await ws.send(json.dumps({"type": "cancel"}))
            while messages[-1]["type"] != "end":
                messages.append(json.loads(await ws.recv()))
        session_id = messages[0]["session_id"]
        hook = await receiver.next()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            record = await wait_for_session(client, session_id)

    assert messages[-1] == {"type": "end", "status": "cancelled", "reason": "user_cancel"}
    assert hook.problem == ""
    assert hook.verified == record
    assert (record["status"], record["end_reason"]) == ("cancelled", "user_cancel")


async def test_a_receiver_that_fails_once_gets_a_retry_and_the_admin_shows_both(
    server: LiveServer,
) -> None:
    async with (
        webhook_receiver(500) as receiver,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        request = {**PROSE, "webhook": receiver.url}
        async with client.stream("POST", "/api/prose/generate", json=request) as response:
            await response.aread()
        session_id = response.headers["x-stream-session-id"]
        first, second = await receiver.next(), await receiver.next()
        record = await wait_for_session(client, session_id)
        attempts = await admin_attempts(server, session_id, 2)

    assert [first.problem, second.problem] == ["", ""]
    assert first.verified == second.verified == record
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == session_id
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    assert attempts == [["1", "500", "HTTP 500"], ["2", "200", "-"]]
    assert "webhook attempt 1 failed: HTTP 500" in server.log_text()


async def test_429_and_503_are_retried_until_the_receiver_takes_it(server: LiveServer) -> None:
    async with (
        webhook_receiver(429, 503) as receiver,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        request = {**PROSE, "webhook": receiver.url}
        async with client.stream("POST", "/api/prose/generate", json=request) as response:
            await response.aread()
        session_id = response.headers["x-stream-session-id"]
        hooks = [await receiver.next() for _ in range(3)]
        attempts = await admin_attempts(server, session_id, 3)

    assert [hook.problem for hook in hooks] == ["", "", ""]
    assert attempts == [["1", "429", "HTTP 429"], ["2", "503", "HTTP 503"], ["3", "200", "-"]]


async def logged(server: LiveServer, line: str) -> str:
    """Return the server's log once it holds `line` (bounded: another process writes it)."""
    deadline = asyncio.get_running_loop().time() + RECORD_SECONDS
    while line not in (log := server.log_text()):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)  # Another process's log: nothing to await.
    return log


async def test_a_receiver_that_refuses_with_a_4xx_is_not_retried(server: LiveServer) -> None:
    async with (
        webhook_receiver(400) as receiver,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        request = {**PROSE, "webhook": receiver.url}
        async with client.stream("POST", "/api/prose/generate", json=request) as response:
            await response.aread()
        session_id = response.headers["x-stream-session-id"]
        await receiver.next()
        gave_up = f"Stream {session_id}: webhook to {receiver.url} not delivered (HTTP 400 after 1"
        log = await logged(server, gave_up)
        attempts = await admin_attempts(server, session_id, 1)
        exposition = (await client.get("/metrics")).text

    assert gave_up in log
    assert 'deerflow_webhooks_total{outcome="refused"} 1.0' in exposition.splitlines()
    assert attempts == [["1", "400", "HTTP 400"]]
    assert len(receiver.received) == 1


async def test_a_webhook_to_a_host_not_allowed_is_refused_before_the_stream_opens(
    server: LiveServer,
) -> None:
    elsewhere = {**CHAT, "webhook": "https://hooks.example.com/stream-ended"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        refused = await client.post("/api/chat/stream", json=elsewhere)
        not_http = await client.post(
            "/api/prose/generate", json={**PROSE, "webhook": "ftp://127.0.0.1/hook"}
        )
    ws_url = server.url.replace("http://", "ws://") + "/ws/stream/"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "chat.start", "request": elsewhere}))
        ws_refusal = json.loads(await ws.recv())

    detail = "This server does not send webhooks to that host (STREAM_WEBHOOK_ALLOWED_HOSTS)."
    assert (refused.status_code, refused.json()) == (422, {"detail": detail})
    assert "x-stream-session-id" not in refused.headers
    assert not_http.status_code == 422
    assert not_http.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "webhook"],
            "msg": "Value error, Not a webhook URL: the scheme must be http or https.",
        }
    ]
    assert ws_refusal == {"type": "error", "detail": detail}


async def test_a_receiver_that_hangs_does_not_hold_the_stream_end(server: LiveServer) -> None:
    async with (
        webhook_receiver(HANG) as receiver,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        request = {**CHAT, "webhook": receiver.url}
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            # Were the end held for the webhook, this would never end (the receiver answers
            # only when released below).
            async with asyncio.timeout(60):
                body = await response.aread()
        session_id = response.headers["x-stream-session-id"]
        hook = await receiver.next()
        answered_before_the_end = hook.answered.is_set()
        record = await wait_for_session(client, session_id)
        pending = await admin_attempts(server, session_id, 0)
        receiver.release()
        attempts = await admin_attempts(server, session_id, 1)

    events: list[Any] = parse(body)
    assert events[-1].event == "message_chunk"
    assert answered_before_the_end is False
    assert pending == []  # the attempt is still in flight after the stream's end
    assert (record["status"], record["end_reason"]) == ("completed", "")
    assert hook.verified == record
    assert attempts == [["1", "200", "-"]]


async def test_a_delivery_in_flight_at_shutdown_is_abandoned_within_the_grace(
    tmp_path: Path,
) -> None:
    env = server_env(
        tmp_path,
        STREAM_DEMO_DELAY_MS="2",
        STREAM_WEBHOOK_SECRET=SECRET,
        STREAM_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        STREAM_WEBHOOK_TIMEOUT_SECONDS="120",
        STREAM_CANCEL_GRACE_SECONDS="1",
    )
    migrate(env)
    async with webhook_receiver(HANG) as receiver:
        with serve(env, tmp_path / "uvicorn.log", "uvicorn") as live:
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                request = {**PROSE, "webhook": receiver.url}
                async with client.stream("POST", "/api/prose/generate", json=request) as response:
                    await response.aread()
                session_id = response.headers["x-stream-session-id"]
                await receiver.next()
            # Far below the attempt's own bound (120 s): the shutdown does not wait for it.
            await terminate(live, within=30)
            log = live.log_text()

    with sqlite3.connect(tmp_path / "live.sqlite3") as db:
        attempts = db.execute(
            "SELECT attempt, status_code, error FROM streaming_webhookdelivery "
            "WHERE session_id = ?",
            [session_id.replace("-", "")],
        ).fetchall()
    assert attempts == [(1, None, "abandoned: the server shut down")]
    assert f"Stream {session_id}: webhook to {receiver.url} abandoned at shutdown" in log
    assert log_problems(log) == []
