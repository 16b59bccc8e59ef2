"""Holds on threads: the deadline bounds a queued stream, and a dead worker's hold expires."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.test import override_settings

from streaming.models import EndReason, Status, StreamSession
from streaming.runs.threads import ThreadHold, thread_key
from tests.support import services
from tests.support.asgi import post_json
from tests.support.sources import Probe
from tests.support.sseparse import parse

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_queued_stream_is_bound_by_the_deadline(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    # A run elsewhere holds the thread and never lets go.
    holder = ThreadHold(thread_key(None, "stuck"), uuid.uuid4())
    assert await holder.take() is None
    request = {"thread_id": "stuck", "multitask_strategy": "enqueue"}
    with override_settings(STREAM_TIMEOUT_SECONDS=0.2):
        exchange = await post_json("/api/chat/stream", request)
        body = await exchange.read_all()
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    await holder.release()

    [frame] = parse(body)
    assert frame.json() == {
        "thread_id": "stuck",
        "error": "The stream took longer than the server allows.",
        "reason": "timeout",
    }
    assert (session.status, session.end_reason) == (Status.TIMED_OUT, EndReason.TIMEOUT)


async def test_an_ended_run_frees_its_thread_for_the_next(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    request = {"thread_id": "again", "multitask_strategy": "reject"}
    first = await post_json("/api/chat/stream", request)
    await first.read_until(b"id: 1\n")
    refused = await post_json("/api/chat/stream", request)
    await refused.read_all()
    await first.disconnect()
    second = await post_json("/api/chat/stream", request)
    await second.read_until(b"id: 1\n")
    await second.disconnect()

    assert (first.status, refused.status, second.status) == (200, 409, 200)


@pytest.fixture
def redis_holds(settings) -> None:
    settings.REDIS_URL = services.redis_url()
    settings.STREAM_ROW_HEARTBEAT_SECONDS = 0.1
    settings.STREAM_STALE_AFTER_SECONDS = 1.0


async def test_a_live_hold_is_refreshed_and_a_dead_workers_expires(redis_holds: None) -> None:
    key = thread_key(None, f"ttl-{uuid.uuid4().hex}")
    alive = ThreadHold(key, uuid.uuid4())
    other = ThreadHold(key, uuid.uuid4())
    assert await alive.take() is None
    # While its run refreshes it, the hold outlives its TTL many times over.
    for _ in range(20):
        assert await other.take() == alive.session_id
        await other.freed()
    # The worker dies: nothing refreshes the hold, and the TTL frees the thread.
    assert alive._keeper is not None
    alive._keeper.cancel()
    while (holder := await other.take()) is not None:
        assert holder == alive.session_id
        await other.freed()
    await alive.release()  # not its hold any more: changes nothing
    assert await ThreadHold(key, uuid.uuid4()).take() == other.session_id
    await other.release()


async def test_of_holds_taken_together_exactly_one_wins(redis_holds: None) -> None:
    key = thread_key(None, f"race-{uuid.uuid4().hex}")
    holds = [ThreadHold(key, uuid.uuid4()) for _ in range(10)]
    holders = await asyncio.gather(*(hold.take() for hold in holds))
    [winner] = [hold for hold, holder in zip(holds, holders, strict=True) if holder is None]
    assert {holder for holder in holders if holder is not None} == {winner.session_id}
    await winner.release()


async def test_the_record_keeps_the_policy_that_applied() -> None:
    with override_settings(STREAM_MULTITASK_STRATEGY="enqueue", STREAM_DEMO_DELAY_MS=0):
        chat = await post_json("/api/chat/stream", {})
        prose = await post_json(
            "/api/prose/generate", {"prompt": "x", "option": "fix", "on_disconnect": "continue"}
        )
        await chat.read_all()
        await prose.read_all()
    rows = StreamSession.objects.filter(
        pk__in=[chat.headers["x-stream-session-id"], prose.headers["x-stream-session-id"]]
    )
    params = {row.kind: row.request_params async for row in rows}

    assert (params["chat"]["on_disconnect"], params["chat"]["multitask_strategy"]) == (
        "cancel",
        "enqueue",
    )
    assert params["prose"]["on_disconnect"] == "continue"
    assert "multitask_strategy" not in params["prose"]


async def test_waiting_its_turn_is_not_its_source_stalling(probe: Probe) -> None:
    # A run elsewhere holds the thread while the queued stream waits longer than the stall
    # watchdog allows a source to be silent (three pings, each after 0.2 s, against 0.3 s).
    holder = ThreadHold(thread_key(None, "turn"), uuid.uuid4())
    assert await holder.take() is None
    request = {"thread_id": "turn", "multitask_strategy": "enqueue"}
    quick = override_settings(
        STREAM_IDLE_TIMEOUT_SECONDS=0.3, STREAM_HEARTBEAT_SECONDS=0.2, STREAM_DEMO_DELAY_MS=0
    )
    with quick:
        exchange = await post_json("/api/chat/stream", request)
        await exchange.read_until(b": ping\n\n: ping\n\n: ping\n\n")
        queued = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
        await holder.release()
        body = await exchange.read_all()
    session = await StreamSession.objects.aget(pk=queued.pk)

    assert queued.status == Status.QUEUED
    assert not [frame for frame in parse(body) if frame.event == "error"]
    assert (session.status, session.end_reason) == (Status.COMPLETED, EndReason.NONE)
