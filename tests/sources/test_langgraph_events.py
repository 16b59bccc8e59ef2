"""The `citations` event: gathered from the run's state updates as deer-flow gathers them."""

from __future__ import annotations

from streaming.sources.base import Event
from streaming.sources.langgraph_events import GraphEvents

TEA = {"url": "https://example.com/tea", "title": "Tea"}


def test_citations_anywhere_in_the_updates_are_sent_once_each() -> None:
    events = GraphEvents("t-1")
    events.events((), {"researcher": {"citations": [TEA]}})
    events.events(
        ("researcher:1",), {"agent": {"nested": [{"citations": [TEA | {"title": "Dup"}]}]}}
    )
    events.events((), {"reporter": {"citations": [{"url": "https://example.org", "title": "Org"}]}})

    assert events.citations_event(None) == Event(
        "citations",
        {"thread_id": "t-1", "citations": [TEA, {"url": "https://example.org", "title": "Org"}]},
    )


def test_a_more_relevant_duplicate_improves_the_citation() -> None:
    events = GraphEvents("t-1")
    events.events((), {"a": {"citations": [TEA | {"relevance_score": 0.2}]}})
    better = TEA | {"title": "Tea, a history", "snippet": "Old.", "relevance_score": 0.9}
    events.events((), {"b": {"citations": [better]}})

    event = events.citations_event(None)

    assert event is not None
    assert event.data["citations"] == [better]  # type: ignore[index]


def test_without_citations_in_the_updates_the_final_state_gives_them() -> None:
    events = GraphEvents("t-1")
    events.events((), {"planner": {"current_plan": "plan"}})

    assert events.citations_event({"citations": [TEA]}) == Event(
        "citations", {"thread_id": "t-1", "citations": [TEA]}
    )
    assert events.citations_event({"messages": []}) is None
