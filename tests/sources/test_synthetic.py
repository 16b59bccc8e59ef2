"""The benchmark's synthetic source: the harness's contract, pacing and cleanup signal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from streaming.api.requests import ChatRequest
from streaming.models import EndReason, Status, StreamSession
from streaming.sources import load_source
from streaming.sources.base import Event, SourceError
from streaming.sources.synthetic import GcPauseLog, SyntheticChatSource
from tests.support.asgi import post_json
from tests.support.sseparse import parse

DATA_KEYS = ["thread_id", "agent", "id", "role", "content"]


def bench_body(**fields: Any) -> dict[str, Any]:
    """A request body as the harness sends it."""
    return {"messages": [{"role": "user", "content": "bench"}], "thread_id": "s-1", **fields}


@pytest.fixture
def cleanup_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point BENCH_CLEANUP_LOG at a fresh file for sources created from now on."""
    path = tmp_path / "cleanup.log"
    monkeypatch.setenv("BENCH_CLEANUP_LOG", str(path))
    load_source.cache_clear()  # the app's source instance reads the variable when made
    yield path
    load_source.cache_clear()


def cleanup_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


async def events_of(source: SyntheticChatSource, **fields: Any) -> list[Event]:
    request = ChatRequest.model_validate(bench_body(**fields))
    return [event async for event in source.stream(request, thread_id="s-1")]


async def test_events_have_deer_flows_message_chunk_shape(cleanup_log: Path) -> None:
    events = await events_of(SyntheticChatSource(), n=25, stream_id="sid-1")

    assert len(events) == 25
    assert {event.name for event in events} == {"message_chunk"}
    data = [event.data for event in events if isinstance(event.data, dict)]
    assert len(data) == 25
    assert [list(d) for d in data[:-1]] == [DATA_KEYS] * 24
    assert data[-1] == {**data[-1], "finish_reason": "stop"}
    assert {(d["thread_id"], d["agent"], d["id"], d["role"]) for d in data} == {
        ("s-1", "coder", "run-sid-1", "assistant")
    }
    assert "".join(str(d["content"]) for d in data).startswith(" The quick brown fox")
    assert [line[1:] for line in cleanup_lines(cleanup_log)] == [["sid-1", "complete", "25"]]


async def test_events_follow_an_absolute_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a clock of the test's own, so the schedule is checked exactly, however busy the box.
    delay = 0.02
    loop = asyncio.get_running_loop()
    clock = [loop.time()]
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        clock[0] += max(0.0, seconds)
        await real_sleep(0)

    monkeypatch.setattr(loop, "time", lambda: clock[0])
    monkeypatch.setattr(asyncio, "sleep", sleep)
    request = ChatRequest.model_validate(bench_body(n=6, delay_ms=delay * 1000))
    start = loop.time()
    arrivals = []
    async for _ in SyntheticChatSource().stream(request, thread_id="s-1"):
        arrivals.append(loop.time() - start)
        if len(arrivals) == 2:
            await asyncio.sleep(3 * delay)  # a slow reader: events 3-5 are due meanwhile

    # Late events come at once instead of pushing the schedule back; the last is on time.
    assert arrivals == pytest.approx([0.02, 0.04, 0.10, 0.10, 0.10, 0.12])


async def test_without_delay_it_still_yields_to_the_loop() -> None:
    other_ran = 0

    async def other() -> None:
        nonlocal other_ran
        while True:
            other_ran += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await events_of(SyntheticChatSource(), n=50)
    task.cancel()
    assert other_ran >= 49


async def test_parameters_out_of_range_fail_the_source() -> None:
    with pytest.raises(SourceError, match="parameters are invalid"):
        await events_of(SyntheticChatSource(), n=-1)


@pytest.mark.django_db(transaction=True)
@override_settings(STREAM_CHAT_SOURCE="synthetic")
async def test_stream_on_the_wire_and_cleanup_on_completion(cleanup_log: Path) -> None:
    exchange = await post_json("/api/chat/stream", bench_body(n=3, stream_id="wire-1"))
    frames = parse(await exchange.read_all())

    assert [(f.id, f.event) for f in frames] == [(str(i), "message_chunk") for i in (1, 2, 3)]
    assert [f.json()["content"] for f in frames] == [" The", " quick", " brown"]
    assert [line[1:] for line in cleanup_lines(cleanup_log)] == [["wire-1", "complete", "3"]]
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    assert (session.status, session.source) == (Status.COMPLETED, "synthetic")
    assert not {"n", "stream_id"} & set(session.request_params)


@pytest.mark.django_db(transaction=True)
@override_settings(STREAM_CHAT_SOURCE="synthetic")
async def test_disconnect_writes_the_cleanup_line_before_the_app_finishes(
    cleanup_log: Path,
) -> None:
    exchange = await post_json("/api/chat/stream", bench_body(n=1000, delay_ms=5, stream_id="d-1"))
    await exchange.read_until(b"id: 2\n")

    await exchange.disconnect()

    [[at, stream_id, reason, sent]] = cleanup_lines(cleanup_log)
    assert (stream_id, reason) == ("d-1", "cancelled")
    assert 2 <= int(sent) < 1000
    assert float(at) > 0
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)


@pytest.mark.django_db(transaction=True)
async def test_a_request_cannot_select_it(cleanup_log: Path) -> None:
    body = bench_body(n=3, stream_id="x", source="synthetic", auto_accepted_plan=False)
    exchange = await post_json("/api/chat/stream", body)
    frames = parse(await exchange.read_all())

    assert frames[-1].event == "interrupt"  # the demo workflow, as configured
    assert cleanup_lines(cleanup_log) == []


def test_gc_pause_log_keeps_long_pauses_only(tmp_path: Path) -> None:
    path = tmp_path / "gc.log"
    hook = GcPauseLog(str(path))
    hook("start", {"generation": 0, "collected": 0})
    hook("stop", {"generation": 0, "collected": 1})  # far below the 2 ms threshold
    hook("start", {"generation": 2, "collected": 0})
    hook._started -= 0.005  # as if the collection took 5 ms
    hook("stop", {"generation": 2, "collected": 42})

    [line] = path.read_text().splitlines()
    _, kind, generation, pause_ms, collected = line.split()
    assert (kind, generation, collected) == ("gc", "2", "42")
    assert float(pause_ms) >= 5
