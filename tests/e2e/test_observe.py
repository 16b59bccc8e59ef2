"""What an operator sees of a real server: JSON log lines, metrics, readiness."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer, hang_up_after, migrate, serve, server_env

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


def log_entries(server: LiveServer) -> list[dict[str, Any]]:
    """Return the server's log lines, each parsed as one JSON object (uvicorn's own too)."""
    return [json.loads(line) for line in server.log_text().splitlines()]


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
