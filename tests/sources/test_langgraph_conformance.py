"""deer-flow's graph shapes through the `langgraph` source: the frames deer-flow's server sends.

The conformance graph (tests/support/conformance_graph.py) calls a loopback OpenAI-compatible
server through langchain-openai; each test compares the whole stream with the frames
deer-flow's `_astream_workflow_generator` would send for the same model answers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.test import override_settings

from streaming.models import EndReason, Status, StreamSession
from streaming.sources.langgraph import RECURSION_LIMIT_MESSAGE
from tests.support.asgi import HttpExchange, post_json
from tests.support.deerflow_frames import (
    THREAD,
    Frame,
    closing_chunks_apart,
    comparable,
    encode,
    interrupt_frame,
    message,
    text_frames,
    tool_call_frames,
)
from tests.support.fake_openai import FakeOpenAI, Reply, answer, stream, tool_call
from tests.support.services import require

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = {"role": "user", "content": "茶的历史"}
HANDOFF = '{"research_topic": "tea", "locale": "zh-CN"}'
SEARCH = '{"query": "tea history"}'
PAGES = [
    {"type": "page", "title": "茶の歴史", "url": "https://example.com/tea", "content": "Old."},
    {"type": "page", "title": "Tea", "url": "https://example.org/tea", "content": "Older."},
]


@pytest.fixture(autouse=True)
def _langchain_openai() -> None:
    require(
        importlib.util.find_spec("langchain_openai") is not None,
        "langchain-openai (requirements-dev.txt)",
    )


@contextlib.asynccontextmanager
async def model_server(*replies: Reply, **settings: Any) -> AsyncIterator[FakeOpenAI]:
    """Serve `replies` on loopback and run the conformance graph against them."""
    async with FakeOpenAI(*replies).running() as fake:
        with override_settings(
            STREAM_CHAT_SOURCE="langgraph",
            STREAM_CHAT_GRAPH="tests.support.conformance_graph.build_graph",
            LANGGRAPH_CHECKPOINTER="memory",
            OPENAI_BASE_URL=fake.base_url,
            **settings,
        ):
            yield fake


async def chat(thread_id: str, **payload: Any) -> tuple[list[Frame], HttpExchange]:
    exchange = await post_json("/api/chat/stream", {"thread_id": thread_id, **payload})
    return comparable(await exchange.read_all(), thread_id), exchange


def planning_replies() -> list[Reply]:
    return [
        stream(tool_call("handoff_to_planner", HANDOFF, call_id="call_handoff")),
        stream(answer('{"title": "茶", ', '"steps": []}')),
    ]


async def test_plan_review_is_sent_as_deerflow_sends_it_in_the_requests_locale() -> None:
    thread_id = str(uuid.uuid4())
    async with model_server(*planning_replies()) as fake:
        frames, exchange = await chat(thread_id, locale="zh-CN", messages=[QUESTION])

    kept, closing = closing_chunks_apart(frames)
    assert encode(kept) == encode(
        [
            *tool_call_frames(
                "coordinator", 1, 1, "handoff_to_planner", "call_handoff", HANDOFF,
                partial={"research_topic": "te"},
            ),
            *text_frames("planner", 2, 2, '{"title": "茶", ', '"steps": []}'),
            interrupt_frame(3),
        ]
    )  # fmt: skip
    assert len(closing) in (0, 2)  # one per message with newer langchain-openai
    # deer-flow's nodes read the locale from the state: their prompts say so.
    assert [seen.system_prompt() for seen in fake.connections] == [
        "You are the coordinator. Answer in zh-CN.",
        "You are the planner. Answer in zh-CN.",
    ]
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    assert session.status == Status.COMPLETED


async def test_accepted_plan_streams_research_and_report_then_the_citations() -> None:
    thread_id = str(uuid.uuid4())
    replies = [
        *planning_replies(),
        stream(tool_call("web_search", SEARCH, call_id="call_search")),
        stream(answer("茶 is ", "old.")),
        # A reasoning model's think block, its tags split across chunks.
        stream(answer("<th", "ink>Let me ", "think.</thi", "nk>\n\n# 茶", "\n\nTea is old.")),
    ]
    async with model_server(*replies) as fake:
        await chat(thread_id, messages=[QUESTION])
        frames, exchange = await chat(
            thread_id,
            interrupt_feedback="accepted",
            messages=[{"role": "user", "content": "Start research"}],
        )

    kept, _ = closing_chunks_apart(frames)
    result = json.dumps(PAGES, ensure_ascii=False)
    assert encode(kept) == encode(
        [
            *tool_call_frames(
                "researcher", 1, 1, "web_search", "call_search", SEARCH, partial={"query": "t"}
            ),
            message(
                "tool_call_result", "researcher", 2, 2, node="tools", content=result,
                tool_call_id="call_search",
            ),
            *text_frames("researcher", 3, 3, "茶 is ", "old.", node="agent"),
            # deer-flow strips each chunk alone and would send these tags and the reasoning.
            *text_frames("reporter", 4, 5, "", "", "", "# 茶", "\n\nTea is old."),
            (
                "citations",
                {
                    "thread_id": THREAD,
                    "citations": [
                        {"url": "https://example.com/tea", "title": "茶の歴史"},
                        {"url": "https://example.org/tea", "title": "Tea"},
                    ],
                },
            ),
        ]
    )  # fmt: skip
    assert [seen.system_prompt() for seen in fake.connections[2:]] == [
        "You are the researcher. Answer in en-US.",
        "You are the researcher. Answer in en-US.",
        "You are the reporter. Answer in en-US.",
    ]
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    assert session.status == Status.COMPLETED


@pytest.mark.parametrize(("limit", "model_calls"), [(None, 13), (8, 4)])
async def test_a_research_loop_ends_at_agent_recursion_limit_as_a_clean_error(
    limit: int | None, model_calls: int
) -> None:
    thread_id = str(uuid.uuid4())
    searching = stream(tool_call("web_search", SEARCH, call_id="call_search"))
    async with model_server(*planning_replies(), searching, AGENT_RECURSION_LIMIT=limit) as fake:
        frames, exchange = await chat(thread_id, auto_accepted_plan=True, messages=[QUESTION])

    assert frames[-1] == (
        "error",
        {"thread_id": THREAD, "error": RECURSION_LIMIT_MESSAGE, "reason": "error"},
    )
    # The research agent asks the model at every other step: 1, 3, ... up to the limit.
    assert len(fake.connections) == 2 + model_calls
    session = await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])
    assert (session.status, session.end_reason) == (Status.FAILED, EndReason.ERROR)
    assert "GraphRecursionError" in session.error
