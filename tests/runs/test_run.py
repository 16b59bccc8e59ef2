"""Every way a stream ends: the last frame on the wire and the row in the database."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest
from django.test import override_settings

from streaming import records
from streaming.models import EndReason, Status, StreamSession
from streaming.observe.worker import worker_id
from streaming.runs.registry import find_live_run
from tests.support.asgi import post_json
from tests.support.sources import Probe
from tests.support.sseparse import parse

pytestmark = pytest.mark.django_db(transaction=True)


async def session_of(exchange) -> StreamSession:
    return await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])


async def streamed(body: dict[str, object]) -> StreamSession:
    """Return the row of a chat stream read to its end."""
    exchange = await post_json("/api/chat/stream", body)
    await exchange.read_all()
    return await session_of(exchange)


async def test_completed_stream_records_completion(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {"messages": []})
    frames = parse(await exchange.read_all())

    assert [f.id for f in frames] == ["1", "2", "3", "4", "5"]
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.COMPLETED, "")
    assert (session.events_sent, session.last_event_id) == (5, 5)
    assert session.ended_at is not None
    assert probe.cleanup_reason == "complete"


async def test_the_row_records_its_worker_and_time_to_first_event(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    probe.delay = 0.05  # before each event, the first included
    first = await streamed({"messages": []})
    probe.events = 0
    empty = await streamed({"messages": []})

    assert first.worker == empty.worker == worker_id()
    assert first.first_event_ms is not None
    assert first.duration_seconds is not None
    assert 50 <= first.first_event_ms < first.duration_seconds * 1000
    assert (empty.status, empty.events_sent, empty.first_event_ms) == (Status.COMPLETED, 0, None)


async def test_disconnect_mid_stream_cancels_source_and_records_it(
    probe: Probe, caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("CountingSource")
    probe.events, probe.delay = 1000, 0.005
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_until(b"id: 3\n")

    await exchange.disconnect()

    assert probe.cleaned.is_set()
    assert probe.cleanup_reason == "cancelled"
    produced = probe.produced
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    assert 3 <= session.events_sent <= session.last_event_id <= produced < 1000
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await asyncio.sleep(0.05)  # a source that kept running would produce more by now
    assert probe.produced == produced


async def test_disconnect_while_source_idle(
    probe: Probe, caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_until(b"id: 1\n")

    await exchange.disconnect()

    assert probe.cleanup_reason == "cancelled"
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    assert session.events_sent == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@override_settings(STREAM_TIMEOUT_SECONDS=0.2)
async def test_deadline_ends_with_timeout_frame(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "t-1"})
    frames = parse(await exchange.read_all())

    assert frames[-1].event == "error"
    assert frames[-1].id == "2"
    assert frames[-1].json() == {
        "thread_id": "t-1",
        "error": "The stream took longer than the server allows.",
        "reason": "timeout",
    }
    assert probe.cleanup_reason == "cancelled"
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.TIMED_OUT, EndReason.TIMEOUT)
    assert session.last_event_id == 2


@override_settings(STREAM_TIMEOUT_SECONDS=30)
async def test_disconnect_inside_deadline_scope_is_a_disconnect(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_until(b"id: 1\n")

    await exchange.disconnect()

    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)


async def test_source_error_sends_generic_frame_and_keeps_detail_internal(
    probe: Probe, caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("FailingSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "t-2"})
    body = await exchange.read_all()
    frames = parse(body)

    assert [f.event for f in frames] == ["message_chunk", "message_chunk", "error"]
    assert frames[-1].json() == {
        "thread_id": "t-2",
        "error": "The stream failed because of an internal error.",
        "reason": "error",
    }
    assert b"SECRET" not in body
    assert b"exploded" not in body
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.FAILED, EndReason.ERROR)
    assert "upstream exploded" in session.error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(session.id) in errors[0].getMessage()


@override_settings(STREAM_HEARTBEAT_SECONDS=0.05)
async def test_heartbeat_comments_while_source_is_silent(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {})
    await exchange.read_until(b"id: 1\n")
    await exchange.read_until(b": ping\n\n" * 2)
    probe.gate.set()
    body = await exchange.read_all()

    assert body.startswith(b": stream open\n\n")
    assert [f.data for f in parse(body)][-1].endswith('"finish_reason":"stop"}')
    session = await session_of(exchange)
    assert session.status == Status.COMPLETED


@override_settings(STREAM_ON_DISCONNECT="contine")
async def test_an_unknown_on_disconnect_opens_no_stream(caplog: pytest.LogCaptureFixture) -> None:
    exchange = await post_json("/api/chat/stream", {})
    body = await exchange.read_all()

    assert exchange.status == 503
    assert json.loads(body) == {"detail": "The server cannot open streams right now."}
    assert await StreamSession.objects.acount() == 0
    assert any("'contine' is not one of cancel, continue" in m for m in caplog.messages)


async def test_a_cancel_while_the_run_records_its_end_still_ends_its_readers(
    probe: Probe, use_source, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_source("CountingSource")
    probe.events = 3
    writing, release = asyncio.Event(), asyncio.Event()
    finish_session = records.finish_session

    async def slow_finish(*args: object, **kwargs: object) -> bool:
        writing.set()
        await release.wait()
        return await finish_session(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "finish_session", slow_finish)
    probe.hold_at = 1
    exchange = await post_json("/api/chat/stream", {})
    # A cancel that found the run live reaches it a moment later (`call_soon_threadsafe`):
    # here, once the source is done and the run is recording its end.
    run = find_live_run(uuid.UUID(exchange.headers["x-stream-session-id"]))
    assert run is not None
    probe.gate.set()
    await writing.wait()
    run.cancel_requested()
    release.set()
    body = await exchange.read_all()

    assert [f.id for f in parse(body)] == ["1", "2", "3"]  # to the source's last event
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.COMPLETED, EndReason.NONE)
