"""deer-flow's checkpointer, langgraph-checkpoint-postgres, keeps a thread for its resume."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from django.test import override_settings

from tests.support import services
from tests.support.asgi import post_json
from tests.support.fake_openai import FakeOpenAI, answer, stream, tool_call
from tests.support.sseparse import deerflow_events

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = {"role": "user", "content": "What is the history of tea?"}


@pytest.fixture
async def checkpointer() -> AsyncIterator[str]:
    services.require(
        importlib.util.find_spec("langgraph.checkpoint.postgres") is not None
        and importlib.util.find_spec("langchain_openai") is not None,
        "langgraph-checkpoint-postgres and langchain-openai (requirements-dev.txt)",
    )
    services.postgres_url()
    from tests.support import postgres_checkpointer  # needs the package checked above

    yield "tests.support.postgres_checkpointer.postgres_saver"
    await postgres_checkpointer.close_all()


async def test_a_plan_review_resumes_from_postgresql(checkpointer: str) -> None:
    thread_id = f"pg-{uuid.uuid4()}"
    replies = [
        stream(tool_call("handoff_to_planner", '{"research_topic": "tea"}', call_id="c1")),
        stream(answer('{"title": "Tea"}')),
        stream(answer("Tea is old.")),
        stream(answer("# Tea")),
    ]
    async with FakeOpenAI(*replies).running() as fake:
        with override_settings(
            STREAM_CHAT_SOURCE="langgraph",
            STREAM_CHAT_GRAPH="tests.support.conformance_graph.build_graph",
            LANGGRAPH_CHECKPOINTER=checkpointer,
            OPENAI_BASE_URL=fake.base_url,
        ):
            first = await post_json(
                "/api/chat/stream", {"thread_id": thread_id, "messages": [QUESTION]}
            )
            plan = deerflow_events(await first.read_all())
            resumed = await post_json(
                "/api/chat/stream",
                {
                    "thread_id": thread_id,
                    "interrupt_feedback": "accepted",
                    "messages": [{"role": "user", "content": "Start research"}],
                },
            )
            research = deerflow_events(await resumed.read_all())

    assert plan[-1][0] == "interrupt"
    agents = [data.get("agent") for name, data in research if name == "message_chunk"]
    assert agents[0] == "researcher"
    assert agents[-1] == "reporter"
    async with await psycopg.AsyncConnection.connect(services.postgres_url()) as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] > 0
