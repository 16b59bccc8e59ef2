"""Durable streams on real daphne: resume byte for byte, runs that outlive their
connection, SIGTERM and SIGKILL with no row left `running`."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.live import (
    ROOT,
    LiveServer,
    daphne,
    log_problems,
    migrate,
    open_sse_streams,
    server_env,
    session_states,
    terminate,
    wait_for_session,
)
from tests.support.sseparse import deerflow_events, parse

QUESTION = {"messages": [{"role": "user", "content": "How do tides work?"}]}
# No thread_id: each stream is a thread of its own (one live run per thread).
CHAT = {**QUESTION, "auto_accepted_plan": True}


@pytest.fixture(scope="module")
def continuing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("continue")
    env = server_env(tmp, STREAM_DEMO_DELAY_MS="3", STREAM_ON_DISCONNECT="continue")
    migrate(env)
    with daphne(env, tmp / "daphne.log") as live:
        yield live


async def read_events(response: httpx.Response, count: int) -> bytes:
    """Read until `count` whole events arrived; return exactly those frames."""
    body = b""
    chunks = response.aiter_bytes()
    while len(parse(body.rsplit(b"\n\n", 1)[0] + b"\n\n")) < count:
        body += await anext(chunks)
    frames = body.split(b"\n\n")
    kept, seen = [], 0
    for frame in frames:
        if seen == count:
            break
        kept.append(frame)
        seen += b"\ndata: " in b"\n" + frame
    return b"\n\n".join(kept) + b"\n\n"


async def test_drop_at_10_and_resume_equals_the_uninterrupted_stream(
    continuing: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=continuing.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat/stream", json=CHAT) as response:
            session_id = response.headers["x-stream-session-id"]
            first = await read_events(response, 10)
        # The connection is gone; the run goes on. Reconnect after event 10.
        resumed = await client.get(
            f"/api/sessions/{session_id}/stream", headers={"Last-Event-ID": "10"}
        )
        whole = await client.get(f"/api/sessions/{session_id}/stream")
        record = await wait_for_session(client, session_id)

    joined = parse(first) + parse(resumed.content)
    assert [f.id for f in joined] == [f.id for f in parse(whole.content)]
    assert [f.data for f in joined] == [f.data for f in parse(whole.content)]
    assert len(joined) >= 30
    assert record["status"] == "completed"
    assert record["events_sent"] == record["last_event_id"] == len(joined)


async def test_with_continue_the_run_completes_after_a_disconnect_at_5(
    continuing: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=continuing.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat/stream", json=CHAT) as response:
            session_id = response.headers["x-stream-session-id"]
            await read_events(response, 5)
        record = await wait_for_session(client, session_id)
        replay = await client.get(f"/api/sessions/{session_id}/stream")

    frames = parse(replay.content)
    assert record["status"] == "completed"
    assert [f.id for f in frames] == [str(i) for i in range(1, int(record["last_event_id"]) + 1)]
    assert deerflow_events(replay.content)[-1][1]["agent"] == "reporter"


async def test_heartbeats_during_a_silent_source_keep_deerflow_parsing(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path, STREAM_DEMO_DELAY_MS="400", STREAM_HEARTBEAT_SECONDS="0.1")
    migrate(env)
    with daphne(env, tmp_path / "daphne.log") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            client.stream("POST", "/api/chat/stream", json=QUESTION) as response,
        ):
            body = await read_events(response, 3)

    blocks = body.decode().split("\n\n")[:-1]
    pings = [b for b in blocks if b == ": ping"]
    events = [b for b in blocks if not b.startswith(":")]
    assert len(pings) >= 3 * 2  # 400 ms of silence before each event, a ping every 100 ms
    assert "\r" not in body.decode()
    for block in events:
        lines = block.split("\n")
        assert [line.partition(": ")[0] for line in lines] == ["id", "event", "data"]
        json.loads(lines[2].partition(": ")[2])


async def test_sigterm_interrupts_every_live_stream(tmp_path: Path) -> None:
    env = server_env(tmp_path, STREAM_DEMO_DELAY_MS="50")
    migrate(env)
    with daphne(env, tmp_path / "daphne.log") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            asyncio.TaskGroup() as group,
        ):
            streams = await open_sse_streams(client, CHAT, 20, group)
            await terminate(server, within=10)  # Railway's draining time is 15 s
            bodies = await asyncio.gather(*streams)

    assert session_states(tmp_path / "live.sqlite3") == [("interrupted", "server_shutdown")] * 20
    told = [deerflow_events(b)[-1][1] for b in bodies if deerflow_events(b)]
    assert told
    assert all(event.get("reason") == "shutdown" for event in told)
    log = server.log_text()
    assert log_problems(log) == []
    assert "client disconnected" not in log


def newest_heartbeat(db: Path) -> datetime:
    """Return the latest `heartbeat_at` of the session rows in the SQLite database `db`."""
    with closing(sqlite3.connect(db)) as conn:
        (value,) = conn.execute("SELECT MAX(heartbeat_at) FROM streaming_streamsession").fetchone()
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


async def test_sigkill_leaves_rows_that_the_sweep_ends(tmp_path: Path) -> None:
    heartbeat = 0.5
    env = server_env(
        tmp_path, STREAM_DEMO_DELAY_MS="50", STREAM_ROW_HEARTBEAT_SECONDS=str(heartbeat)
    )
    migrate(env)
    db = tmp_path / "live.sqlite3"
    with daphne(env, tmp_path / "daphne.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            responses = [
                await client.send(
                    client.build_request("POST", "/api/chat/stream", json=CHAT), stream=True
                )
                for _ in range(5)
            ]
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(5)
            for response in responses:
                await response.aclose()

    assert session_states(db) == [("running", "")] * 5
    last_beat = newest_heartbeat(db)
    sweep = [sys.executable, "manage.py", "sweep_sessions"]
    # Ages are measured from the rows' last heartbeat, not from how soon a sweep starts (a
    # second or more on a busy machine): a minute is far more than these rows can be old.
    await asyncio.to_thread(
        subprocess.run, [*sweep, "--stale-after", "60"], cwd=ROOT, env=env, check=True
    )
    assert session_states(db) == [("running", "")] * 5
    # Two row heartbeats (the default threshold) after the last beat, the worker is lost.
    lost_at = last_beat + timedelta(seconds=2 * heartbeat)
    await asyncio.sleep(max(0.0, (lost_at - datetime.now(UTC)).total_seconds()))
    await asyncio.to_thread(subprocess.run, sweep, cwd=ROOT, env=env, check=True)
    assert session_states(db) == [("interrupted", "worker_lost")] * 5
