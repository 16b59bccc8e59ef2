"""Resume after reconnect: replay after Last-Event-ID, then follow live, with nothing lost."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from project.asgi import application
from streaming import records
from streaming.models import EndReason, Kind, Status, StreamSession, Transport
from streaming.runs import redislog
from streaming.runs.frames import to_frame
from streaming.runs.registry import live_runs
from streaming.sources.base import Event
from tests.support import services
from tests.support.asgi import HttpExchange, post_json, request
from tests.support.sources import Probe
from tests.support.sseparse import Frame, parse

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"thread_id": "resume-thread"}


async def resume(session_id: str, after: int | None = None, **headers: str) -> HttpExchange:
    if after is not None:
        headers["last-event-id"] = str(after)
    return await request("GET", f"/api/sessions/{session_id}/stream", headers=headers)


async def ended(session_id: str) -> StreamSession:
    """Wait for the run of `session_id` to end (its log closes after the record), return the row."""
    registry = live_runs()
    key = uuid.UUID(session_id)
    run = registry.runs.get(key)
    log = run.log if run is not None else registry.retained(key)
    assert log is not None
    async with asyncio.timeout(10):
        while not log.closed:
            await log.wait(log.last_id)
    return await StreamSession.objects.aget(pk=session_id)


def data_of(frames: list[Frame]) -> list[tuple[str | None, str, str]]:
    return [(f.id, f.event, f.data) for f in frames]


@override_settings(STREAM_ON_DISCONNECT="continue")
async def test_drop_after_10_then_resume_equals_an_uninterrupted_read(
    probe: Probe, use_source
) -> None:
    use_source("CountingSource")
    probe.events, probe.hold_at = 30, 10
    first = await post_json("/api/chat/stream", CHAT)
    session_id = first.headers["x-stream-session-id"]
    watcher = await resume(session_id, after=0)  # an uninterrupted reader, for comparison
    await first.read_until(b'"content":"t9 "}\n\n')
    before = parse(first.body)
    await first.disconnect()
    probe.gate.set()

    again = await resume(session_id, after=10)
    after = parse(await again.read_all())
    whole = parse(await watcher.read_all())

    assert again.status == 200
    assert again.headers["x-stream-session-id"] == session_id
    assert data_of(before + after) == data_of(whole)
    assert [f.id for f in whole] == [str(i) for i in range(1, 31)]
    session = await ended(session_id)
    assert (session.status, session.end_reason) == (Status.COMPLETED, "")


@override_settings(STREAM_ON_DISCONNECT="continue")
async def test_with_continue_a_disconnect_does_not_stop_the_run(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    probe.events, probe.hold_at = 20, 5
    first = await post_json("/api/chat/stream", CHAT)
    session_id = first.headers["x-stream-session-id"]
    await first.read_until(b'"content":"t4 "}\n\n')
    await first.disconnect()
    probe.gate.set()

    session = await ended(session_id)
    replay = parse(await (await resume(session_id)).read_all())

    assert probe.produced == 20
    assert (session.status, session.last_event_id) == (Status.COMPLETED, 20)
    assert [f.id for f in replay] == [str(i) for i in range(1, 21)]


async def test_finished_session_replays_to_its_end_and_closes(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    done = await post_json("/api/chat/stream", CHAT)
    original = parse(await done.read_all())
    session_id = done.headers["x-stream-session-id"]

    replay = await resume(session_id, after=2)
    frames = parse(await replay.read_all())
    by_query = await request(
        "GET", f"/api/sessions/{session_id}/stream", headers={}, query="last_event_id=4"
    )

    assert data_of(frames) == data_of(original[2:])
    assert data_of(parse(await by_query.read_all())) == data_of(original[4:])


async def test_two_readers_at_once_each_get_everything(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    probe.events, probe.delay = 15, 0.002
    first = await post_json("/api/chat/stream", CHAT)
    session_id = first.headers["x-stream-session-id"]
    second = await resume(session_id, after=0)

    one, two = await asyncio.gather(first.read_all(), second.read_all())

    assert data_of(parse(one)) == data_of(parse(two))
    assert [f.id for f in parse(two)] == [str(i) for i in range(1, 16)]


async def test_in_cancel_mode_the_run_stops_when_its_last_reader_leaves(
    probe: Probe, use_source
) -> None:
    use_source("CountingSource")
    probe.events, probe.delay = 1000, 0.002
    first = await post_json("/api/chat/stream", CHAT)
    session_id = first.headers["x-stream-session-id"]
    second = await resume(session_id, after=0)
    await first.read_until(b"id: 3\n")
    await first.disconnect()
    count = first.body.count(b"\nid: ") + 20
    await second.read_until(f"id: {count}\n".encode())  # the run goes on for the other reader

    await second.disconnect()

    session = await ended(session_id)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    assert session.last_event_id < 1000


@override_settings(STREAM_LOG_MAX_EVENTS=5)
async def test_resume_from_an_id_no_longer_kept_gets_the_merged_state(
    probe: Probe, use_source
) -> None:
    use_source("CountingSource")
    probe.events = 20
    done = await post_json("/api/chat/stream", CHAT)
    await done.read_all()
    session_id = done.headers["x-stream-session-id"]

    compacted = await resume(session_id, after=3)
    kept = await resume(session_id, after=15)

    assert compacted.status == 200
    text = "".join(f"t{i} " for i in range(20))
    assert await compacted.read_all() == (
        b": stream open\n\nid: 20\nevent: message_chunk\ndata: "
        b'{"thread_id":"resume-thread","agent":"reporter","id":"run-test","role":"assistant",'
        b'"content":"' + text.encode() + b'","snapshot":true,"finish_reason":"stop"}\n\n'
    )
    assert [f.id for f in parse(await kept.read_all())] == ["16", "17", "18", "19", "20"]


@override_settings(STREAM_LOG_RETAIN=0, REDIS_URL="")
async def test_unknown_or_forgotten_sessions(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    done = await post_json("/api/chat/stream", CHAT)
    await done.read_all()

    forgotten = await resume(done.headers["x-stream-session-id"])
    unknown = await resume("6d0e8a52-0000-4000-8000-000000000000")
    bad = await request(
        "GET",
        f"/api/sessions/{done.headers['x-stream-session-id']}/stream",
        headers={"last-event-id": "x"},
    )

    assert forgotten.status == 410
    assert json.loads(await forgotten.read_all()) == {
        "detail": "The events of this session are no longer kept."
    }
    assert unknown.status == 404
    assert json.loads(await unknown.read_all()) == {"detail": "No such session."}
    assert bad.status == 422
    assert json.loads(await bad.read_all()) == {
        "detail": "Last-Event-ID must be a non-negative integer."
    }


@override_settings(STREAM_ON_DISCONNECT="continue")
async def test_resume_over_websocket(probe: Probe, use_source) -> None:
    use_source("CountingSource")
    probe.events, probe.hold_at = 12, 4
    ws = WebsocketCommunicator(application, "/ws/stream/")
    assert (await ws.connect(10))[0]
    await ws.send_json_to({"type": "chat.start", "request": CHAT})
    session_id = (await ws.receive_json_from(10))["session_id"]
    first = [await ws.receive_json_from(10) for _ in range(4)]
    await ws.disconnect()
    probe.gate.set()

    ws = WebsocketCommunicator(application, "/ws/stream/")
    assert (await ws.connect(10))[0]
    await ws.send_json_to({"type": "resume", "session_id": session_id, "last_event_id": 4})
    rest: list[dict[str, object]] = []
    while not rest or rest[-1]["type"] != "end":
        rest.append(await ws.receive_json_from(10))
    await ws.send_json_to({"type": "resume", "session_id": "nope", "last_event_id": 0})
    refused = await ws.receive_json_from(10)
    await ws.disconnect()

    events = first + rest[:-1]
    assert [m["id"] for m in events] == list(range(1, 13))
    assert [m["data"]["content"] for m in events] == [f"t{i} " for i in range(12)]
    assert rest[-1] == {"type": "end", "status": "completed", "reason": ""}
    assert refused == {"type": "error", "detail": "`session_id` must be a session's UUID."}


async def test_a_run_on_another_worker_is_followed_before_its_events_reach_redis() -> None:
    # A reader that reaches another worker before the run's mirror wrote anything to Redis
    # (it writes in batches, off the hot path) follows it from the start instead of a 410.
    with override_settings(REDIS_URL=services.redis_url()):
        session_id = await records.open_session(
            kind=Kind.CHAT,
            transport=Transport.SSE,
            thread_id="elsewhere",
            source="demo",
            request_params={},
            client_address=None,
            user_agent="",
        )  # The row of a run on another worker, which has not written to Redis yet.
        client = redislog.client()
        assert client is not None
        try:
            reader = await resume(str(session_id))
            assert reader.status == 200
            mirror = redislog.RedisLogWriter(client, session_id, lambda: 0)
            mirror.add(to_frame(1, Event("message_chunk", {"content": "first"})))
            await mirror.close(EndReason.NONE)
            frames = parse(await reader.read_all())
        finally:
            await client.delete(redislog.key(session_id), redislog.progress_key(session_id))

    assert [(f.id, f.event, f.json()) for f in frames] == [
        ("1", "message_chunk", {"content": "first"})
    ]
