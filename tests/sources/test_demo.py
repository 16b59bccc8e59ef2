from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from django.test import override_settings

from streaming.api.requests import ChatRequest
from streaming.sources.base import ChatSource, Event
from streaming.sources.demo import DemoWorkflowSource

QUESTION = "What is the history of tea?"
ACK = "Great! Let's get started."
AGENTS = {"coordinator", "planner", "researcher", "coder", "reporter"}
INTERRUPT_OPTIONS = [
    {"text": "Edit plan", "value": "edit_plan"},
    {"text": "Start research", "value": "accepted"},
]

FIRST_SHAPE = [
    ("tool_calls", "coordinator"),
    ("tool_call_chunks", "coordinator"),
    ("message_chunk", "coordinator"),
    ("message_chunk", "planner"),
    ("interrupt", None),
]
RESEARCH_SHAPE = [
    *[
        ("tool_calls", "researcher"),
        ("tool_call_chunks", "researcher"),
        ("message_chunk", "researcher"),
        ("tool_call_result", "researcher"),
        ("message_chunk", "researcher"),
    ]
    * 2,
    ("tool_calls", "coder"),
    ("tool_call_chunks", "coder"),
    ("message_chunk", "coder"),
    ("tool_call_result", "coder"),
    ("message_chunk", "coder"),
    ("message_chunk", "reporter"),
]


@pytest.fixture(autouse=True)
def no_delay() -> Iterator[None]:
    with override_settings(STREAM_DEMO_DELAY_MS=0):
        yield


def ask(text: str = QUESTION, **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": text}], **fields})


async def run(source: ChatSource, request: ChatRequest, thread_id: str = "t1") -> list[Event]:
    return [event async for event in source.stream(request, thread_id=thread_id)]


def data(event: Event) -> dict[str, Any]:
    assert isinstance(event.data, dict)
    return event.data


def shape(events: list[Event]) -> list[tuple[str, str | None]]:
    """Return (event name, agent) in order, runs of the same pair counted once."""
    result: list[tuple[str, str | None]] = []
    for event in events:
        pair = (event.name, data(event).get("agent"))
        if not result or result[-1] != pair:
            result.append(pair)
    return result


def text_of(events: list[Event], agent: str) -> str:
    return "".join(data(e).get("content", "") for e in events if data(e).get("agent") == agent)


def plan_of(events: list[Event]) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(text_of(events, "planner"))
    return plan


async def test_first_request_hands_off_plans_and_ends_with_the_interrupt() -> None:
    events = await run(DemoWorkflowSource(), ask())

    assert shape(events) == FIRST_SHAPE
    stop, interrupt = data(events[-2]), data(events[-1])
    assert stop["agent"] == "planner"
    assert stop["finish_reason"] == "stop"
    assert interrupt == {
        "thread_id": "t1",
        "id": interrupt["id"],
        "role": "assistant",
        "content": "Please Review the Plan.",
        "finish_reason": "interrupt",
        "options": INTERRUPT_OPTIONS,
    }
    assert interrupt["id"]


async def test_coordinator_hands_the_question_and_locale_to_the_planner() -> None:
    events = await run(DemoWorkflowSource(), ask(locale="de-DE"))

    call = data(events[0])
    assert call["tool_calls"] == [
        {
            "name": "handoff_to_planner",
            "args": {"research_topic": QUESTION, "locale": "de-DE"},
            "id": call["tool_calls"][0]["id"],
            "type": "tool_call",
        }
    ]
    coordinator = [data(e) for e in events if data(e).get("agent") == "coordinator"]
    assert coordinator[-1] == {
        "thread_id": "t1",
        "agent": "coordinator",
        "id": call["id"],
        "role": "assistant",
        "finish_reason": "tool_calls",
    }


@pytest.mark.parametrize("max_step_num", [1, 2, 3, 5, 20])
async def test_plan_is_json_with_the_fields_the_ui_reads(max_step_num: int) -> None:
    events = await run(DemoWorkflowSource(), ask(max_step_num=max_step_num, locale="zh-CN"))

    plan = plan_of(events)
    assert plan["locale"] == "zh-CN"
    assert plan["has_enough_context"] is False
    assert plan["title"] == "History of tea"
    assert "history of tea" in plan["thought"]
    assert 1 <= len(plan["steps"]) <= max_step_num
    for step in plan["steps"]:
        assert set(step) == {"need_search", "title", "description", "step_type"}
        assert step["title"]
        assert step["description"]
        assert step["step_type"] in {"research", "processing"}
        assert step["need_search"] is (step["step_type"] == "research")
    assert plan["steps"][0]["step_type"] == "research"
    planner_chunks = [e for e in events if data(e).get("agent") == "planner"]
    assert len(planner_chunks) > 20, "the plan streams in small pieces"


@pytest.mark.parametrize(
    ("question", "title", "topic", "thought"),
    [
        (
            "How do deer survive winter?",
            "How deer survive winter",
            "how deer survive winter",
            "The user wants to understand how deer survive winter.",
        ),
        (
            "Where do eels come from?",
            "Where eels come from",
            "where eels come from",
            "The user wants to understand where eels come from.",
        ),
        (
            "What is vibe coding? Give me a short research report",
            "Vibe coding",
            "vibe coding",
            "The user wants to understand vibe coding.",
        ),
        (
            "Give me a short research report on vibe coding.",
            "Vibe coding",
            "vibe coding",
            "The user wants to understand vibe coding.",
        ),
        ("Keep it brief. What are LLMs?", "LLMs", "LLMs", "The user wants to understand LLMs."),
        (
            "Please write a report about the history of tea.",
            "History of tea",
            "history of tea",
            "The user wants to understand the history of tea.",
        ),
        (
            "Explain quantum computing. Keep it short.",
            "Quantum computing",
            "quantum computing",
            "The user wants to understand quantum computing.",
        ),
        (
            "Why is the sky blue?",
            "Why is the sky blue",
            "Why is the sky blue",
            'The user asks: "Why is the sky blue?"',
        ),
    ],
)
async def test_plan_is_about_the_topic_in_plain_english(
    question: str, title: str, topic: str, thought: str
) -> None:
    events = await run(DemoWorkflowSource(), ask(question))

    plan = plan_of(events)
    assert plan["title"] == title
    assert plan["thought"].startswith(f"{thought} This plan has ")
    assert plan["steps"][0]["title"] == f"Background: {topic}"
    assert data(events[0])["tool_calls"][0]["args"]["research_topic"] == question


async def test_accepted_follow_up_researches_the_earlier_question_without_replanning() -> None:
    source = DemoWorkflowSource()
    first = await run(source, ask())
    events = await run(source, ask(ACK, interrupt_feedback="accepted"))

    assert shape(events) == RESEARCH_SHAPE
    report = text_of(events, "reporter")
    assert report.startswith(f"# {plan_of(first)['title']}\n")
    assert QUESTION in report
    assert ACK not in report
    assert data(events[-1]) == {
        "thread_id": "t1",
        "agent": "reporter",
        "id": data(events[-2])["id"],
        "role": "assistant",
        "finish_reason": "stop",
    }


async def test_research_follows_the_plan_steps() -> None:
    source = DemoWorkflowSource()
    plan = plan_of(await run(source, ask()))
    events = await run(source, ask(ACK, interrupt_feedback="accepted"))

    calls = [call for e in events if e.name == "tool_calls" for call in data(e)["tool_calls"]]
    assert [call["name"] for call in calls] == ["web_search", "web_search", "python_repl_tool"]
    assert [call["args"]["query"] for call in calls[:2]] == [s["title"] for s in plan["steps"][:2]]
    assert "print(" in calls[2]["args"]["code"]
    report = text_of(events, "reporter")
    for step in plan["steps"]:
        assert f"### {step['title']}" in report


async def test_edit_plan_replans_with_the_feedback_and_asks_again() -> None:
    source = DemoWorkflowSource()
    await run(source, ask())
    events = await run(source, ask("Focus on China", interrupt_feedback="edit_plan"))

    assert shape(events) == [("message_chunk", "planner"), ("interrupt", None)]
    plan = plan_of(events)
    assert plan["title"] == "History of tea"
    assert plan["steps"][0]["title"] == "Address the feedback: Focus on China"
    assert len(plan["steps"]) == 3
    assert data(events[-2])["finish_reason"] == "stop"
    assert data(events[-1])["finish_reason"] == "interrupt"

    research = await run(source, ask(ACK, interrupt_feedback="accepted"))
    report = text_of(research, "reporter")
    assert "### Address the feedback: Focus on China" in report
    assert QUESTION in report


async def test_auto_accepted_plan_runs_the_whole_workflow_in_one_stream() -> None:
    events = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True))

    assert len(events) >= 30
    assert shape(events) == FIRST_SHAPE[:-1] + RESEARCH_SHAPE
    assert QUESTION in text_of(events, "reporter")


async def test_auto_accepted_plan_ignores_interrupt_feedback_as_deer_flow_does() -> None:
    events = await run(
        DemoWorkflowSource(), ask(auto_accepted_plan=True, interrupt_feedback="accepted")
    )

    assert shape(events) == FIRST_SHAPE[:-1] + RESEARCH_SHAPE


async def thread_of_requests(source: DemoWorkflowSource) -> list[list[Event]]:
    return [
        await run(source, ask()),
        await run(source, ask("Shorter please", interrupt_feedback="edit_plan")),
        await run(source, ask(ACK, interrupt_feedback="accepted")),
        await run(source, ask("And coffee?", auto_accepted_plan=True)),
    ]


async def test_every_message_has_an_id_never_used_before_in_the_thread() -> None:
    requests = await thread_of_requests(DemoWorkflowSource())

    seen: set[str] = set()
    for events in requests:
        current = None
        for event in events:
            message_id = data(event)["id"]
            assert message_id, event
            if message_id != current:
                assert message_id not in seen, "a message id came back"
                seen.add(message_id)
                current = message_id


async def test_all_chunks_of_a_message_share_its_agent() -> None:
    requests = await thread_of_requests(DemoWorkflowSource())

    agents: dict[str, str | None] = {}
    for event in (e for events in requests for e in events):
        body = data(event)
        assert agents.setdefault(body["id"], body.get("agent")) == body.get("agent")
        if event.name == "interrupt":
            assert "agent" not in body
        else:
            assert body["agent"] in AGENTS


async def test_every_message_ends_with_exactly_one_finish_reason() -> None:
    requests = await thread_of_requests(DemoWorkflowSource())

    for events in requests:
        messages: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            if event.name != "tool_call_result":
                messages.setdefault(data(event)["id"], []).append(data(event))
        for chunks in messages.values():
            reasons = [chunk.get("finish_reason") for chunk in chunks]
            assert reasons[-1] in {"stop", "tool_calls", "interrupt"}
            assert not any(reasons[:-1])
            if any(chunk.get("tool_calls") for chunk in chunks):
                assert reasons[-1] == "tool_calls"


async def test_tool_call_results_answer_earlier_tool_calls() -> None:
    events = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True, max_search_results=2))

    called: dict[str, str] = {}
    results = 0
    for event in events:
        body = data(event)
        if event.name == "tool_calls":
            called.update({call["id"]: call["name"] for call in body["tool_calls"]})
        if event.name == "tool_call_result":
            results += 1
            assert called[body["tool_call_id"]] in {"web_search", "python_repl_tool"}
            assert body["id"]
            assert body["content"]
            if called[body["tool_call_id"]] == "web_search":
                pages = json.loads(body["content"])
                assert len(pages) == 2
                for page in pages:
                    assert set(page) == {"type", "title", "url", "content"}
                    assert page["type"] == "page"
                    assert page["url"].startswith("https://example.com/demo/")
                    assert "Demo data" in page["content"]
    assert results == 3


async def test_tool_call_chunks_rebuild_the_arguments_as_the_ui_does() -> None:
    events = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True))

    fragments: dict[str, list[str]] = {}
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        body = data(event)
        if event.name == "tool_calls":
            (call,) = body["tool_calls"]
            (head,) = body["tool_call_chunks"]
            assert (head["name"], head["id"], head["type"]) == (
                call["name"],
                call["id"],
                "tool_call_chunk",
            )
            calls[body["id"]] = call
            fragments[body["id"]] = [head["args"]]
        elif event.name == "tool_call_chunks":
            (chunk,) = body["tool_call_chunks"]
            assert (chunk["name"], chunk["id"]) == ("", "")
            fragments[body["id"]].append(chunk["args"])
    assert len(calls) == 4
    for message_id, call in calls.items():
        assert len(fragments[message_id]) > 1, "arguments stream in fragments"
        assert json.loads("".join(fragments[message_id])) == call["args"]


async def test_empty_content_is_omitted() -> None:
    events = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True))

    for event in events:
        assert data(event).get("content", "x") != "", event
    finishes = [data(e) for e in events if data(e).get("finish_reason")]
    assert finishes
    assert all("content" not in body for body in finishes)


async def test_deep_thinking_streams_the_planners_reasoning_before_the_plan() -> None:
    events = await run(DemoWorkflowSource(), ask(enable_deep_thinking=True))

    planner = [data(e) for e in events if data(e).get("agent") == "planner"]
    reasoning = [i for i, body in enumerate(planner) if "reasoning_content" in body]
    content = [i for i, body in enumerate(planner) if "content" in body]
    assert reasoning
    assert max(reasoning) < min(content)
    assert "history of tea" in "".join(planner[i]["reasoning_content"] for i in reasoning)
    assert plan_of(events)["title"] == "History of tea"


async def test_follow_up_on_an_unknown_thread_uses_its_own_message() -> None:
    events = await run(
        DemoWorkflowSource(), ask("Tell me about tea", interrupt_feedback="accepted")
    )

    assert shape(events) == RESEARCH_SHAPE
    assert text_of(events, "reporter").startswith("# Tea\n")


async def test_threads_are_forgotten_least_recently_used_first() -> None:
    source = DemoWorkflowSource(max_threads=2)
    await run(source, ask("What is tea?"), thread_id="a")
    await run(source, ask("What is coffee?"), thread_id="b")
    await run(source, ask("What is cocoa?"), thread_id="c")

    forgotten = await run(source, ask("Go ahead", interrupt_feedback="accepted"), thread_id="a")
    kept = await run(source, ask("Go ahead", interrupt_feedback="accepted"), thread_id="c")

    assert text_of(forgotten, "reporter").startswith("# Go ahead\n")
    assert text_of(kept, "reporter").startswith("# Cocoa\n")


def without_ids(events: list[Event]) -> list[tuple[str, str]]:
    text = [(e.name, json.dumps(data(e), sort_keys=True)) for e in events]
    ids: set[str] = {
        value
        for e in events
        for value in [
            data(e)["id"],
            data(e).get("tool_call_id"),
            *(c["id"] for c in data(e).get("tool_calls", [])),
        ]
        if value
    }
    result = []
    for name, body in text:
        for value in ids:
            body = body.replace(value, "<id>")
        result.append((name, body.replace('"t2"', '"t1"')))
    return result


async def test_content_is_deterministic_apart_from_ids() -> None:
    first = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True), thread_id="t1")
    second = await run(DemoWorkflowSource(), ask(auto_accepted_plan=True), thread_id="t2")

    assert without_ids(first) == without_ids(second)


async def test_every_event_gives_other_tasks_a_turn() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        seen = [ticks async for _ in DemoWorkflowSource().stream(ask(), thread_id="t1")]
    finally:
        ticker.cancel()

    assert len(seen) > 20
    assert all(later > earlier for earlier, later in pairwise(seen))


async def test_delay_setting_is_read_when_the_stream_starts() -> None:
    source = DemoWorkflowSource()
    stream = source.stream(ask(), thread_id="t1")
    loop = asyncio.get_running_loop()
    with override_settings(STREAM_DEMO_DELAY_MS=20):
        started = loop.time()
        for _ in range(3):
            await anext(stream)
        elapsed = loop.time() - started
    await stream.aclose()

    assert elapsed >= 0.055


async def test_closing_the_stream_midway_is_clean() -> None:
    source = DemoWorkflowSource()
    stream = source.stream(ask(auto_accepted_plan=True), thread_id="t1")
    for _ in range(5):
        await anext(stream)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)

    events = await run(source, ask(), thread_id="t1")
    assert shape(events) == FIRST_SHAPE


async def test_source_satisfies_the_protocol() -> None:
    chat: ChatSource = DemoWorkflowSource()

    assert [e async for e in chat.stream(ask(), thread_id="t1")]
