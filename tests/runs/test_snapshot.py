"""The merged state of a run: a reader resumed from it merges what a reader that never left did."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from streaming.api.requests import ChatRequest
from streaming.runs.frames import Frame
from streaming.runs.snapshot import RunSnapshot
from streaming.sources.base import Event
from streaming.sources.demo import DemoWorkflowSource
from tests.support.deerflow_merge import merged

Events = list[tuple[str, dict[str, Any]]]
T = "t-1"


def chunk(id: str, agent: str = "researcher", **fields: Any) -> tuple[str, dict[str, Any]]:
    return (
        "message_chunk",
        {"thread_id": T, "agent": agent, "id": id, "role": "assistant"} | fields,
    )


def named(name: str, id: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return (name, chunk(id, **fields)[1])


def call_chunk(args: str, id: str = "", name: str = "") -> dict[str, Any]:
    return {"name": name, "args": args, "id": id, "index": 0, "type": "tool_call_chunk"}


# Two messages streaming at once, a tool call whose arguments arrive in escaped pieces, its
# result after a later message began, a coordinator's direct_response (whose `message`
# replaces the content), reasoning, text after a finish, an interrupt, citations.
TRICKY: Events = [
    chunk("a", reasoning_content="think "),
    chunk("b", agent="coder", content="B1 "),
    chunk("a", content="A1 "),
    named(
        "tool_calls",
        "a",
        tool_calls=[{"name": "web_search", "args": {}, "id": "c1", "type": "tool_call"}],
        tool_call_chunks=[call_chunk("", "c1", "web_search")],
    ),
    chunk("b", agent="coder", content="B2 "),
    named("tool_call_chunks", "a", tool_call_chunks=[call_chunk('&#123;"query": ')]),
    named("tool_call_chunks", "a", tool_call_chunks=[call_chunk('"tea"&#125;')]),
    chunk("a", finish_reason="tool_calls"),
    chunk("c", content="C1 "),
    named("tool_call_result", "r1", tool_call_id="c1", content='[{"type":"page"}]'),
    named("tool_call_result", "r2", tool_call_id="c2-unknown", content="skipped"),
    chunk("b", agent="coder", content="B3", finish_reason="stop"),
    chunk("b", agent="coder", content=" after"),
    named(
        "tool_calls",
        "d",
        agent="coordinator",
        tool_calls=[{"name": "direct_response", "args": {}, "id": "c2", "type": "tool_call"}],
        tool_call_chunks=[call_chunk('{"message": "Hi', "c2", "direct_response")],
    ),
    named("tool_call_chunks", "d", tool_call_chunks=[call_chunk(' there"}')]),
    chunk("d", agent="coordinator", content="ignored?"),
    named(
        "tool_call_result",
        "r3",
        agent="coordinator",
        tool_call_id="c2",
        content="ok",
        finish_reason="stop",
    ),
    chunk("c", content="C2"),
    named("tool_call_chunks", "c", tool_call_chunks=[call_chunk("stray")]),  # calls: []
    ("citations", {"thread_id": T, "citations": [{"url": "https://a.example", "title": "A"}]}),
    (
        "interrupt",
        {
            "thread_id": T,
            "id": "i",
            "role": "assistant",
            "content": "Please Review the Plan.",
            "finish_reason": "interrupt",
            "options": [{"text": "Start research", "value": "accepted"}],
        },
    ),
    ("error", {"thread_id": T, "error": "The stream was cancelled.", "reason": "cancelled"}),
]


async def demo_events() -> Events:
    source = DemoWorkflowSource()
    request = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": "Tea?"}], "auto_accepted_plan": True}
    )
    with override_settings(STREAM_DEMO_DELAY_MS=0):
        return [(e.name, dict(e.data)) async for e in source.stream(request, thread_id=T)]  # type: ignore[arg-type]


def snapshot_of(events: Events) -> RunSnapshot:
    snapshot = RunSnapshot()
    for event_id, (name, data) in enumerate(events, 1):
        snapshot.fold(event_id, Event(name, data))
    return snapshot


def decoded(frames: list[Frame]) -> Events:
    return [(f.name, json.loads(f.text)) for f in frames]


def check_every_resume(events: Events) -> int:
    """For every place a reader left and every later snapshot point, compare merged states
    (also of a reader cut off within the compacted frames); return how many were checked."""
    whole = merged(events)
    checked = 0
    for point in range(1, len(events) + 1):
        snapshot = snapshot_of(events[:point])
        for left_at in range(point):
            # The log keeps the events from `first_kept` on: as few or as many as can be.
            for first_kept in {left_at + 2, point + 1}:
                frames = snapshot.compacted(after=left_at, first_kept=first_kept)
                ids = [f.id for f in frames]
                assert ids == sorted(ids)
                assert all(left_at <= i <= point for i in ids)
                rest = events[snapshot.last_id :]  # a trailing error is not merged: it follows
                assert merged(events[:left_at] + decoded(frames) + rest) == whole
                checked += 1
                for cut in range(1, len(frames)):
                    seen = events[:left_at] + decoded(frames[:cut])
                    assert resumed(seen, frames[cut - 1].id, first_kept, events) == whole
    return checked
    return checked


def resumed(seen: Events, after: int, first_kept: int, events: Events) -> dict[str, Any]:
    """Return what a reader cut off at `after` reaches on resuming once the run is over."""
    if after + 1 >= first_kept:  # Kept: replayed as they were.
        return merged(seen + events[after:])
    later = snapshot_of(events)
    again = later.compacted(after=after, first_kept=first_kept)
    return merged(seen + decoded(again) + events[later.last_id :])


def test_tricky_events_resume_to_the_same_state() -> None:
    assert check_every_resume(TRICKY) > 200
    assert merged(TRICKY)["messages"][3]["content"] == "Hi there"  # direct_response won


async def test_a_demo_research_resumes_to_the_same_state_from_anywhere() -> None:
    events = await demo_events()
    assert {name for name, _ in events} >= {"tool_calls", "tool_call_chunks", "tool_call_result"}
    whole = merged(events)
    snapshot = snapshot_of(events)
    for left_at in range(0, len(events), 7):
        frames = snapshot.compacted(after=left_at, first_kept=len(events) + 1)
        assert merged(events[:left_at] + decoded(frames)) == whole
    # From nothing: one message frame per message, with its tool calls and results after it.
    fresh = decoded(snapshot.compacted(after=0, first_kept=len(events) + 1))
    assert [data["snapshot"] for _, data in fresh if "snapshot" in data] == [True] * len(
        whole["messages"]
    )
    assert len(fresh) < len(events) / 5


def test_the_state_survives_a_round_trip_as_json() -> None:
    snapshot = snapshot_of(TRICKY)
    loaded = RunSnapshot.load(snapshot.dump())
    assert loaded.compacted(after=3, first_kept=10) == snapshot.compacted(after=3, first_kept=10)
    assert loaded.last_id == len(TRICKY) - 1  # the error is not merged


def test_prose_is_one_frame_of_its_whole_text() -> None:
    snapshot = RunSnapshot()
    for event_id, piece in enumerate(["Tea ", "came\nfrom ", "China."], 1):
        snapshot.fold(event_id, Event("", piece))
    assert snapshot.compacted(after=1, first_kept=3) == [
        Frame(3, "snapshot", "Tea came\nfrom China.", False)
    ]


@pytest.mark.parametrize("pieces", [1, 1000, 100_000])
def test_the_state_grows_with_the_output_not_the_events(pieces: int) -> None:
    snapshot = RunSnapshot()
    for event_id in range(1, pieces + 1):
        snapshot.fold(event_id, Event("message_chunk", {"id": "m", "content": "x"}))
    message = snapshot.messages["m"]
    assert str(message.content) == "x" * pieces
    assert len(message.content.blocks) <= 2 * pieces.bit_length()
    assert len(message.content.tail) < message.content.TAIL
