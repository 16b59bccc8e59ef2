"""End to end on a real daphne: a real HTTP client streams, hangs up, and reads the rows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import (
    LiveServer,
    daphne,
    hang_up_after,
    migrate,
    server_env,
    wait_for_session,
)
from tests.support.sseparse import deerflow_events, parse


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("daphne")
    env = server_env(tmp, STREAM_DEMO_DELAY_MS="2")
    migrate(env)
    with daphne(env, tmp / "daphne.log") as live:
        yield live


async def test_whole_chat_streams_and_is_recorded(server: LiveServer) -> None:
    request = {
        "messages": [{"role": "user", "content": "What is quantum computing?"}],
        "auto_accepted_plan": True,
        "thread_id": "__default__",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            session_id = response.headers["x-stream-session-id"]
            body = b"".join([chunk async for chunk in response.aiter_bytes()])

        record = await wait_for_session(client, session_id)

    events = deerflow_events(body)
    assert len(events) >= 30
    assert events[-1][0] == "message_chunk"
    assert events[-1][1]["agent"] == "reporter"
    assert events[-1][1]["finish_reason"] == "stop"
    assert [f.id for f in parse(body)] == [str(i) for i in range(1, len(events) + 1)]
    assert record["status"] == "completed"
    assert record["events_sent"] == len(events)
    assert "Traceback" not in server.log_text()


async def test_client_that_hangs_up_is_recorded_as_disconnect(server: LiveServer) -> None:
    request = {
        "messages": [{"role": "user", "content": "A long question"}],
        "auto_accepted_plan": True,
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        record = await hang_up_after(client, request, 3)
        session_id = record["id"]

    assert record["status"] == "cancelled"
    assert record["end_reason"] == "client_disconnect"
    assert 3 <= int(record["events_sent"]) <= int(record["last_event_id"])
    log = server.log_text()
    assert "Traceback" not in log
    assert " ERROR " not in log
    assert f"Stream {session_id} ended: client disconnected" in log
