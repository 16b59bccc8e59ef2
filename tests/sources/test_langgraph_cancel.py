"""However a langgraph run ends, the model server sees its connection close within a second.

For a sync node (the coordinator, in a worker thread) and an async node (the research
agent), each streaming an endless answer from the loopback model server through
langchain-openai: a client that hangs up, a cancel, the deadline, a server shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from logging import INFO
from typing import Any

import pytest
from django.test import override_settings

from streaming.models import EndReason, Status, StreamSession
from streaming.runs import shutdown
from tests.support.asgi import HttpExchange, post_json, request
from tests.support.fake_openai import Connection, FakeOpenAI, Reply, answer, endless, stream
from tests.support.fake_openai import tool_call as tool_call_reply
from tests.support.services import require
from tests.support.sseparse import parse

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = {"role": "user", "content": "What is the history of tea?"}
STREAMING = b'"content":"token "'  # the endless answer is reaching the client
CLOSE_WITHIN = 1.0
TIMEOUT = 3.0  # the deadline of the timeout case; its upstream is reached well before


@pytest.fixture(autouse=True)
def _langchain_openai() -> None:
    require(
        importlib.util.find_spec("langchain_openai") is not None,
        "langchain-openai (requirements-dev.txt)",
    )


def replies(node: str) -> list[Reply]:
    """Return the model's answers: endless in the node `node` (`sync` or `async`)."""
    if node == "sync":
        return [endless(interval=0.05)]
    handoff = tool_call_reply("handoff_to_planner", '{"research_topic": "tea"}', call_id="c1")
    return [stream(handoff), stream(answer('{"title": "Tea"}')), endless(interval=0.05)]


@contextlib.asynccontextmanager
async def running(node: str, **settings: Any) -> AsyncIterator[tuple[FakeOpenAI, HttpExchange]]:
    """Start a chat whose `node` streams from the model without end."""
    async with FakeOpenAI(*replies(node)).running() as fake:
        with override_settings(
            STREAM_CHAT_SOURCE="langgraph",
            STREAM_CHAT_GRAPH="tests.support.conformance_graph.build_graph",
            LANGGRAPH_CHECKPOINTER="memory",
            OPENAI_BASE_URL=fake.base_url,
            **settings,
        ):
            payload = {"thread_id": str(uuid.uuid4()), "auto_accepted_plan": True}
            yield fake, await post_json("/api/chat/stream", payload | {"messages": [QUESTION]})


async def closed_after(seen: Connection, moment: float) -> float:
    """Return how long after `moment` the model server saw the connection close."""
    await asyncio.wait_for(seen.closed.wait(), 10)
    return seen.closed_at - moment


async def row(exchange: HttpExchange) -> tuple[str, str]:
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    return session.status, session.end_reason


NODES = ["sync", "async"]


@pytest.mark.parametrize("node", NODES)
async def test_a_client_hanging_up(node: str, caplog: pytest.LogCaptureFixture) -> None:
    async with running(node) as (fake, exchange):
        await exchange.read_until(STREAMING)
        ended = asyncio.get_running_loop().time()
        await exchange.disconnect()

        assert await closed_after(fake.connections[-1], ended) < CLOSE_WITHIN
    assert await row(exchange) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)
    # An expected stop is no failure: neither LangChain nor the run logs it above INFO.
    loggers = ("langchain", "langgraph", "streaming.runs", "streaming.sources")
    above_info = [r for r in caplog.records if r.levelno > INFO and r.name.startswith(loggers)]
    assert [record.getMessage() for record in above_info] == []


@pytest.mark.parametrize("node", NODES)
async def test_a_cancel(node: str) -> None:
    async with running(node) as (fake, exchange):
        await exchange.read_until(STREAMING)
        ended = asyncio.get_running_loop().time()
        session_id = exchange.headers["x-stream-session-id"]
        cancel = await request("POST", f"/api/sessions/{session_id}/cancel")
        await cancel.read_all()
        frames = parse(await exchange.read_all())

        assert await closed_after(fake.connections[-1], ended) < CLOSE_WITHIN
    assert cancel.status == 202
    assert frames[-1].json()["reason"] == "cancelled"
    assert await row(exchange) == (Status.CANCELLED, EndReason.USER_CANCEL)


@pytest.mark.parametrize("node", NODES)
async def test_the_deadline(node: str) -> None:
    started = asyncio.get_running_loop().time()
    async with running(node, STREAM_TIMEOUT_SECONDS=TIMEOUT) as (fake, exchange):
        frames = parse(await exchange.read_all())

        # The run's deadline is a little after `started + TIMEOUT`: this measures no less.
        assert await closed_after(fake.connections[-1], started + TIMEOUT) < CLOSE_WITHIN
    assert STREAMING.decode() in frames[-2].data
    assert frames[-1].json()["reason"] == "timeout"
    assert await row(exchange) == (Status.TIMED_OUT, EndReason.TIMEOUT)


@pytest.mark.parametrize("node", NODES)
async def test_a_server_shutdown(node: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(shutdown._state, "in_progress", False)  # restored after the test
    interrupt: Callable[[], Awaitable[Any]] = shutdown.interrupt_live_runs
    async with running(node) as (fake, exchange):
        await exchange.read_until(STREAMING)
        ended = asyncio.get_running_loop().time()
        await interrupt()
        frames = parse(await exchange.read_all())

        assert await closed_after(fake.connections[-1], ended) < CLOSE_WITHIN
    assert frames[-1].json()["reason"] == "shutdown"
    assert await row(exchange) == (Status.INTERRUPTED, EndReason.SERVER_SHUTDOWN)
