"""The `langgraph` source: a real LangGraph graph through the SSE view, mapped as deer-flow does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import openai
import pytest
from django.test import override_settings

from streaming.models import EndReason, Status, StreamSession
from tests.support import fake_graphs
from tests.support.asgi import HttpExchange, post_json
from tests.support.fake_graphs import call, say
from tests.support.sseparse import deerflow_events, parse

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = {"role": "user", "content": "What is the history of tea?"}
PLAN = '{"title": "Tea", "steps": []}'
OPTIONS = [
    {"text": "Edit plan", "value": "edit_plan"},
    {"text": "Start research", "value": "accepted"},
]
CHAT = override_settings(
    STREAM_CHAT_SOURCE="langgraph",
    STREAM_CHAT_GRAPH="tests.support.fake_graphs.build_chat_graph",
    LANGGRAPH_CHECKPOINTER="memory",
)


async def session_of(exchange: HttpExchange) -> StreamSession:
    return await StreamSession.objects.aget(pk=exchange.headers["x-stream-session-id"])


async def chat(payload: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], HttpExchange]:
    exchange = await post_json("/api/chat/stream", payload)
    return deerflow_events(await exchange.read_all()), exchange


def shape(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str | None]]:
    return [(name, data.get("agent")) for name, data in events]


def text(events: list[tuple[str, dict[str, Any]]], agent: str) -> str:
    return "".join(
        d.get("content", "") for n, d in events if n == "message_chunk" and d["agent"] == agent
    )


def first_request_replies() -> list[Any]:
    handoff = {"research_topic": "tea"}
    return [
        call("handoff_to_planner", handoff, id="run-coordinator", call_id="call_handoff"),
        say(PLAN, id="run-planner"),
    ]


@CHAT
async def test_first_request_streams_the_handoff_and_the_plan_then_interrupts() -> None:
    fake_graphs.reset(*first_request_replies())

    resources = [{"uri": "rag://tea", "title": "Tea notes", "description": "Our notes"}]
    events, exchange = await chat(
        {"thread_id": "lg-1", "messages": [QUESTION], "resources": resources, "max_step_num": 5}
    )

    assert shape(events) == [
        ("tool_calls", "coordinator"),
        ("tool_call_chunks", "coordinator"),
        ("message_chunk", "coordinator"),
        *[("message_chunk", "planner")] * 5,
        ("interrupt", None),
    ]
    tool_calls = events[0][1]
    assert tool_calls["tool_calls"] == [
        {"name": "handoff_to_planner", "args": {}, "id": "call_handoff", "type": "tool_call"}
    ]
    head, tail = tool_calls["tool_call_chunks"][0], events[1][1]["tool_call_chunks"][0]
    assert (head["name"], head["id"], head["index"], head["type"]) == (
        "handoff_to_planner",
        "call_handoff",
        0,
        "tool_call_chunk",
    )
    # deer-flow escapes brackets in argument fragments.
    assert head["args"] + tail["args"] == '&#123;"research_topic": "tea"&#125;'
    assert events[2][1]["finish_reason"] == "tool_calls"
    assert {
        (d["thread_id"], d["id"], d["role"], d["langgraph_node"], d["langgraph_step"])
        for _, d in events[:3]
    } == {("lg-1", "run-coordinator", "assistant", "coordinator", 1)}
    assert events[0][1]["checkpoint_ns"].startswith("coordinator:")
    assert events[0][1]["langgraph_path"] == ["__pregel_pull", "coordinator"]
    assert text(events, "planner") == PLAN
    assert events[-2][1]["finish_reason"] == "stop"
    assert events[-1][0] == "interrupt"
    interrupt = events[-1][1]
    assert interrupt.pop("id")
    assert interrupt == {
        "thread_id": "lg-1",
        "role": "assistant",
        "content": "Please Review the Plan.",
        "finish_reason": "interrupt",
        "options": OPTIONS,
    }
    session = await session_of(exchange)
    assert session.status == Status.COMPLETED
    assert fake_graphs.script.ran == [
        "coordinator",
        "planner (steps: 5, resources: ['Tea notes'])",
    ]


@CHAT
async def test_accepted_feedback_resumes_the_thread_through_the_research_subgraph() -> None:
    fake_graphs.reset(
        *first_request_replies(),
        call("web_search", {"query": "tea history"}, id="run-researcher", call_id="call_search"),
        say("Tea is old.", id="run-summary"),
        say("# Tea\n\nA report.", id="run-reporter"),
    )
    await chat({"thread_id": "lg-2", "messages": [QUESTION]})

    events, exchange = await chat(
        {
            "thread_id": "lg-2",
            "interrupt_feedback": "accepted",
            "messages": [{"role": "user", "content": "Start research"}],
        }
    )

    assert fake_graphs.script.ran[2:] == ["human_feedback: [accepted] Start research", "reporter"]
    assert shape(events) == [
        ("tool_calls", "researcher"),
        ("tool_call_chunks", "researcher"),
        ("message_chunk", "researcher"),
        ("tool_call_result", "researcher"),
        *[("message_chunk", "researcher")] * 4,
        *[("message_chunk", "reporter")] * 4,
    ]
    result = events[3][1]
    assert result["tool_call_id"] == "call_search"
    assert json.loads(result["content"])[0]["title"] == "About tea history"
    assert (result["langgraph_node"], result["checkpoint_ns"][:11]) == ("tools", "researcher:")
    assert events[0][1]["langgraph_node"] == "agent"
    assert text(events, "researcher") == "Tea is old."
    assert text(events, "reporter") == "# Tea\n\nA report."
    assert events[-1][1]["finish_reason"] == "stop"
    session = await session_of(exchange)
    assert session.status == Status.COMPLETED


@CHAT
async def test_edit_plan_feedback_plans_again_and_interrupts_again() -> None:
    fake_graphs.reset(*first_request_replies(), say('{"title": "Tea prices"}', id="run-plan-2"))
    first, _ = await chat({"thread_id": "lg-3", "messages": [QUESTION]})

    events, _ = await chat(
        {
            "thread_id": "lg-3",
            "interrupt_feedback": "edit_plan",
            "messages": [{"role": "user", "content": "Add prices"}],
        }
    )

    assert fake_graphs.script.ran[2:] == [
        "human_feedback: [edit_plan] Add prices",
        "planner (steps: 3, resources: [])",
    ]
    assert shape(events)[-1] == ("interrupt", None)
    assert text(events, "planner") == '{"title": "Tea prices"}'
    assert events[-1][1]["id"] != first[-1][1]["id"]


@override_settings(
    STREAM_CHAT_SOURCE="langgraph", STREAM_CHAT_GRAPH="tests.support.fake_graphs.CANCEL_GRAPH"
)
async def test_disconnect_cancels_the_running_node_and_no_later_node_runs() -> None:
    script = fake_graphs.reset(say("Writing now.", id="run-writer"))
    exchange = await post_json("/api/chat/stream", {"messages": [QUESTION]})
    await exchange.read_until(b"id: 1\n")
    await asyncio.wait_for(script.waiting.wait(), 5)

    await exchange.disconnect()

    assert script.ran == ["writer started", "writer cancelled"]
    script.gate.set()
    await asyncio.sleep(0.05)  # a graph that kept running would reach after_writer now
    assert "after_writer" not in script.ran
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.CANCELLED, EndReason.CLIENT_DISCONNECT)


@override_settings(
    STREAM_CHAT_SOURCE="langgraph", STREAM_CHAT_GRAPH="tests.support.fake_graphs.CANCEL_GRAPH"
)
async def test_a_model_failure_in_a_node_ends_with_its_public_message() -> None:
    request = httpx2.Request("POST", "https://llm.internal.example/v1/chat/completions")
    fake_graphs.reset(openai.APIConnectionError(request=request))

    events, exchange = await chat({"thread_id": "lg-4", "messages": [QUESTION]})

    assert events == [
        (
            "error",
            {
                "thread_id": "lg-4",
                "error": "The model server could not be reached.",
                "reason": "error",
            },
        )
    ]
    session = await session_of(exchange)
    assert (session.status, session.end_reason) == (Status.FAILED, EndReason.ERROR)
    assert "openai.APIConnectionError" in session.error


@override_settings(
    STREAM_CHAT_SOURCE="langgraph",
    STREAM_CHAT_GRAPH="tests.support.fake_graphs.build_chat_graph",
    LANGGRAPH_CHECKPOINTER="tests.support.fake_graphs.make_saver",
)
async def test_checkpointer_from_a_factory_keeps_the_thread_for_resume() -> None:
    script = fake_graphs.reset(*first_request_replies(), say("Again.", id="run-plan-2"))
    await chat({"thread_id": "lg-5", "messages": [QUESTION]})

    events, _ = await chat(
        {"thread_id": "lg-5", "interrupt_feedback": "edit_plan", "messages": [QUESTION]}
    )

    assert shape(events)[-1] == ("interrupt", None)
    assert script.savers_made == 1


@override_settings(
    STREAM_PROSE_SOURCE="langgraph", STREAM_PROSE_GRAPH="tests.support.fake_graphs.PROSE_GRAPH"
)
async def test_prose_graph_streams_its_text() -> None:
    script = fake_graphs.reset(say("Better text,\nnow.", id="run-prose"))

    exchange = await post_json(
        "/api/prose/generate", {"prompt": "Some text.", "option": "zap", "command": "shorter"}
    )
    frames = parse(await exchange.read_all())

    assert "".join(frame.data for frame in frames) == "Better text,\nnow."
    assert script.ran == ["prose: zap shorter Some text."]
