"""What an operator sees of a real server: JSON log lines, metrics, readiness."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer, hang_up_after, migrate, serve, server_env
from tests.support.scrape import deltas, scrape, scrape_until, total, value

SCRIPTED = "tests.support.sources.ScriptedSource"


def chat(script: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": script}], "thread_id": f"thread-{script}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("observe")
    env = server_env(
        tmp, LOG_FORMAT="json", STREAM_CHAT_SOURCE=SCRIPTED, STREAM_TIMEOUT_SECONDS="4"
    )
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live


def log_entries(server: LiveServer, *, workers_only: bool = False) -> list[dict[str, Any]]:
    """Return the server's log lines, each parsed as one JSON object (uvicorn's own too).

    With `--workers`, uvicorn's supervisor never loads the application: its own few lines
    (start, stop) keep uvicorn's format, and `workers_only` leaves them out.
    """
    lines = server.log_text().splitlines()
    return [json.loads(line) for line in lines if not workers_only or line.startswith("{")]


async def test_json_log_lines_parse_and_name_the_stream_they_belong_to(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        record = await hang_up_after(client, chat("hang"), 1)
    assert (record["status"], record["end_reason"]) == ("cancelled", "client_disconnect")

    entries = log_entries(server)
    ended = [e for e in entries if e["message"].startswith(f"Stream {record['id']} ended")]
    assert ended == [
        {
            **ended[0],
            "level": "INFO",
            "session_id": record["id"],
            "thread_id": "thread-hang",
            "kind": "chat",
        }
    ]
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert any('"POST /api/chat/stream HTTP/1.1" 200' in e["message"] for e in access)


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


async def cancel_after_first_event(client: httpx.AsyncClient, script: str) -> bytes:
    """Open a chat stream, cancel it through the API at its first event; return its body."""
    async with client.stream("POST", "/api/chat/stream", json=chat(script)) as response:
        session_id = response.headers["x-stream-session-id"]
        body = b""
        chunks = response.aiter_bytes()
        async for chunk in chunks:
            body += chunk
            if b"id: 1\n" in body:
                break
        assert (await client.post(f"/api/sessions/{session_id}/cancel")).status_code == 202
        async for chunk in chunks:
            body += chunk
    return body


async def test_metrics_count_each_ending_exactly_and_the_live_gauge_returns_to_zero(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        before = await scrape(client)

        completed = (await client.post("/api/chat/stream", json=chat("go"))).headers
        session = completed["x-stream-session-id"]
        await client.post("/api/chat/stream", json=chat("fail"))
        await client.post("/api/chat/stream", json=chat("hang"))  # until the 4 s deadline
        assert b'"reason":"cancelled"' in await cancel_after_first_event(client, "hang")
        await hang_up_after(client, chat("hang"), 1)
        assert (await client.post(f"/api/sessions/{session}/cancel")).status_code == 409
        last_seen = {"Last-Event-ID": "1"}
        resumed = await client.get(f"/api/sessions/{session}/stream", headers=last_seen)
        assert resumed.status_code == 200
        unknown = "00000000-0000-4000-8000-000000000000"
        assert (await client.get(f"/api/sessions/{unknown}/stream")).status_code == 404

        ended = "deerflow_streams_ended_total"
        after = await scrape_until(client, lambda s: total(s, ended) - total(before, ended) == 5)

    assert deltas(before, after, ended) == {
        labels(kind="chat", status="completed", reason="none"): 1,
        labels(kind="chat", status="failed", reason="error"): 1,
        labels(kind="chat", status="timed_out", reason="timeout"): 1,
        labels(kind="chat", status="cancelled", reason="user_cancel"): 1,
        labels(kind="chat", status="cancelled", reason="client_disconnect"): 1,
    }
    assert deltas(before, after, "deerflow_source_errors_total") == {
        labels(kind="chat", source=SCRIPTED): 1
    }
    # Events handed to clients: 3 completed; 1 and the error frame for failed, timed out and
    # cancelled; 1 the client read before it hung up.
    assert deltas(before, after, "deerflow_stream_events_sent_total") == {labels(): 3 + 2 * 3 + 1}
    assert deltas(before, after, "deerflow_stream_resumes_total") == {
        labels(outcome="replayed"): 1,
        labels(outcome="refused"): 1,
    }
    assert deltas(before, after, "deerflow_refusals_total") == {
        labels(status="404"): 1,
        labels(status="409"): 1,
    }
    for histogram, count in [
        ("deerflow_stream_duration_seconds_count", 5),
        ("deerflow_stream_first_event_seconds_count", 5),
        ("deerflow_stream_cancel_latency_seconds_count", 1),
    ]:
        assert deltas(before, after, histogram) == {labels(): count}, histogram
    assert value(after, "deerflow_streams_live", kind="chat", transport="sse") == 0
    assert total(after, "deerflow_streams_live") == 0


async def test_two_uvicorn_workers_sum_their_metrics(tmp_path: Path) -> None:
    env = server_env(
        tmp_path,
        LOG_FORMAT="json",
        STREAM_CHAT_SOURCE=SCRIPTED,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
    )
    (tmp_path / "prometheus").mkdir()
    migrate(env)
    with serve(env, tmp_path / "uvicorn.log", "uvicorn", args=("--workers", "2")) as live:
        # A new connection per request: the kernel hands them to either worker.
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            before = await scrape(client)
        streams = 0
        while len(stream_workers(live)) < 2:
            assert streams < 200, "one worker took every connection"
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                response = await client.post("/api/chat/stream", json=chat("go"))
                assert '"finish_reason":"stop"' in response.text
            streams += 1
        ended = "deerflow_streams_ended_total"
        for _ in range(6):  # whichever worker answers, it sums both
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                after = await scrape_until(
                    client, lambda s: total(s, ended) - total(before, ended) == streams
                )
            assert deltas(before, after, ended) == {
                labels(kind="chat", status="completed", reason="none"): streams
            }
            assert total(after, "deerflow_streams_live") == 0


def stream_workers(live: LiveServer) -> set[int]:
    """Return the workers that served a stream, from their access log lines."""
    return {
        entry["pid"]
        for entry in log_entries(live, workers_only=True)
        if entry["logger"] == "uvicorn.access" and "POST /api/chat/stream" in entry["message"]
    }


async def test_a_killed_workers_live_streams_leave_the_gauge(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = server_env(tmp_path, STREAM_CHAT_SOURCE=SCRIPTED, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    migrate(env)
    live = "deerflow_streams_live"
    with serve(env, tmp_path / "uvicorn.log", "uvicorn", args=("--workers", "2")) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
            client.stream("POST", "/api/chat/stream", json=chat("hang")) as response,
        ):
            chunks = response.aiter_bytes()
            while b"id: " not in await anext(chunks):
                pass
            running = await scrape(client)
            pid = running_worker_pid(tmp_path / "live.sqlite3")
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(httpx.HTTPError):
                async for _ in chunks:  # the connection dies with the worker
                    pass
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            after = await scrape_until(client, lambda samples: total(samples, live) == 0)

    assert value(running, live, kind="chat", transport="sse") == 1
    assert value(after, live, kind="chat", transport="sse") == 0
    assert not list(multiproc.glob(f"gauge_live*_{pid}.db"))


def running_worker_pid(database: Path) -> int:
    """Return the pid of the worker that runs the one running stream, from its row."""
    with sqlite3.connect(database) as conn:
        [(worker,)] = conn.execute(
            "SELECT worker FROM streaming_streamsession WHERE status = 'running'"
        ).fetchall()
    return int(worker.rsplit(":", 1)[1])
