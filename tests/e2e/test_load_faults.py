"""500 concurrent streams on a real daphne, a third each: finished, cancelled, disconnected.

Every row ends in the right state; no run, task or memory is left behind (a second round of
500 does not grow the server: what the first left behind would double); nothing is logged
at ERROR.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from tests.support.live import daphne, migrate, server_env

STREAMS = 500
QUESTION = {"messages": [{"role": "user", "content": "Why do cats purr?"}]}


def rss_kib(pid: int) -> int:
    """Return a process's resident memory in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    answer: dict[str, Any] = (await client.get("/healthz")).json()
    return answer


async def test_500_streams_with_disconnects_and_cancels(tmp_path: Path) -> None:
    env = server_env(
        tmp_path,
        STREAM_DEMO_DELAY_MS="20",
        STREAM_MAX_STREAMS="1000",
        STREAM_MAX_STREAMS_PER_CLIENT="1000",
        STREAM_LOG_RETAIN="20",
    )
    migrate(env)
    rng = random.Random(7)
    plan = [("finish", "cancel", "disconnect")[i % 3] for i in range(STREAMS)]
    # No keep-alive: a connection the server closed must not be reused for the next request.
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=0)
    with daphne(env, tmp_path / "daphne.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            await warm_up(client)
            before_tasks = (await health(client))["tasks"]
            before_rss = rss_kib(server.process.pid)

            async def one(kind: str) -> tuple[str, str]:
                stop_after = rng.randint(1, 40)
                async with client.stream("POST", "/api/chat/stream", json=QUESTION) as response:
                    session_id = response.headers["x-stream-session-id"]
                    seen = 0
                    chunks = response.aiter_bytes()
                    async for chunk in chunks:
                        seen += chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
                        if kind != "finish" and seen >= stop_after:
                            break
                    if kind == "cancel":
                        answer = await client.post(f"/api/sessions/{session_id}/cancel")
                        assert answer.status_code in (202, 409)
                        async for _ in chunks:
                            pass  # read to the cancelled `error` frame and the end
                return kind, session_id

            results = await asyncio.gather(*(one(kind) for kind in plan))
            records = await asyncio.gather(
                *(client.get(f"/api/sessions/{sid}") for _, sid in results)
            )
            after = await settled(client, before_tasks)
            first_round_rss = rss_kib(server.process.pid)
            await asyncio.gather(*(one(kind) for kind in plan))
            again = await settled(client, before_tasks)
            second_round_rss = rss_kib(server.process.pid)
        log = server.log_text()

    wanted = {
        "finish": {("completed", "")},
        # A cancel that arrives after the stream ended finds it completed (409).
        "cancel": {("cancelled", "user_cancel"), ("completed", "")},
        "disconnect": {("cancelled", "client_disconnect"), ("completed", "")},
    }
    ended = [(r.json()["status"], r.json()["end_reason"]) for r in records]
    wrong = [(k, e) for (k, _), e in zip(results, ended, strict=True) if e not in wanted[k]]
    assert wrong == []
    by_kind = {k: [e for (kk, _), e in zip(results, ended, strict=True) if kk == k] for k in wanted}
    assert by_kind["cancel"].count(("cancelled", "user_cancel")) > STREAMS // 3 * 0.9
    assert by_kind["disconnect"].count(("cancelled", "client_disconnect")) > STREAMS // 3 * 0.9
    assert after["live_streams"] == again["live_streams"] == 0
    assert after["tasks"] <= before_tasks
    assert again["tasks"] <= before_tasks
    # The first round grows the heap to its working size; a leak would grow it again.
    growth = second_round_rss - first_round_rss
    assert growth < 12 * 1024, (before_rss, first_round_rss, second_round_rss)
    assert " ERROR " not in log
    assert "Traceback" not in log


async def warm_up(client: httpx.AsyncClient) -> None:
    """Run a few streams first, so one-time allocations do not count as growth."""
    for _ in range(3):
        await client.post("/api/chat/stream", json=QUESTION)


async def settled(client: httpx.AsyncClient, tasks: int) -> dict[str, Any]:
    """Return /healthz once the server has finished every stream's cleanup."""
    for _ in range(100):
        state = await health(client)
        if state["live_streams"] == 0 and state["tasks"] <= tasks:
            return state
        await asyncio.sleep(0.05)
    return state
