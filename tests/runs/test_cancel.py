"""Cancel from anywhere: the sessions API reaches the live stream through the channel layer."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from streaming.models import EndReason, Status, StreamSession
from streaming.runs import cancel as control
from tests.support.asgi import post_json, request
from tests.support.sources import Probe
from tests.support.sseparse import parse

pytestmark = pytest.mark.django_db(transaction=True)


async def test_cancel_api_ends_a_live_sse_stream(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "c1"})
    await exchange.read_until(b"id: 1\n")
    session_id = exchange.headers["x-stream-session-id"]

    cancel = await request("POST", f"/api/sessions/{session_id}/cancel")
    answer = json.loads(await cancel.read_all())
    frames = parse(await exchange.read_all())

    assert cancel.status == 202
    assert answer == {"id": session_id, "status": "cancelling"}
    assert frames[-1].event == "error"
    assert frames[-1].json() == {
        "thread_id": "c1",
        "error": "The stream was cancelled.",
        "reason": "cancelled",
    }
    assert probe.cleanup_reason == "cancelled"
    session = await StreamSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.USER_CANCEL)
    assert session.last_event_id == 2


async def test_cancel_after_the_end_changes_nothing_and_says_so(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_all()
    session_id = exchange.headers["x-stream-session-id"]
    before = await StreamSession.objects.aget(pk=session_id)

    cancel = await request("POST", f"/api/sessions/{session_id}/cancel")
    answer = json.loads(await cancel.read_all())

    assert cancel.status == 409
    assert answer == {"detail": "The session has already ended; nothing was changed."}
    after = await StreamSession.objects.aget(pk=session_id)
    assert (after.status, after.end_reason, after.ended_at) == (
        before.status,
        before.end_reason,
        before.ended_at,
    )


async def test_cancel_unknown_session_is_404() -> None:
    cancel = await request("POST", "/api/sessions/7d6f0c1e-0000-4000-8000-000000000000/cancel")
    assert cancel.status == 404
    assert json.loads(await cancel.read_all()) == {"detail": "No such session."}


@override_settings(STREAM_API_TOKEN="t0k")
async def test_sessions_api_needs_the_token_when_one_is_set(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    auth = {"authorization": "Bearer t0k"}
    exchange = await post_json("/api/chat/stream", {}, auth)
    await exchange.read_all()
    session_id = exchange.headers["x-stream-session-id"]

    for method, path in [
        ("GET", f"/api/sessions/{session_id}"),
        ("GET", f"/api/sessions/{session_id}/stream"),
        ("POST", f"/api/sessions/{session_id}/cancel"),
    ]:
        refused = await request(method, path)
        assert refused.status == 401, path
        assert json.loads(await refused.read_all()) == {"detail": "Missing or invalid API token."}
        allowed = await request(method, path, headers=auth)
        assert allowed.status in (200, 409), path
        await allowed.read_all()


async def test_a_failing_cancel_channel_is_listened_to_again(
    probe: Probe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("IdleSource")
    failures = iter([TimeoutError("redis timed out")])
    real_wait = control.CancelSubscription.wait

    async def flaky_wait(self: control.CancelSubscription) -> EndReason:
        for failure in failures:
            raise failure
        return await real_wait(self)

    monkeypatch.setattr(control.CancelSubscription, "wait", flaky_wait)
    # As with Redis: cancels travel over the layer (the in-memory one needs no listener).
    monkeypatch.setattr(control, "needs_layer", lambda: True)
    monkeypatch.setattr(control, "LISTEN_RETRY_SECONDS", 0)
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_until(b"id: 1\n")

    cancel = await request(
        "POST", f"/api/sessions/{exchange.headers['x-stream-session-id']}/cancel"
    )
    await cancel.read_all()
    frames = parse(await exchange.read_all())

    assert frames[-1].json()["reason"] == "cancelled"
    assert "cancel channel failed (redis timed out)" in caplog.text
