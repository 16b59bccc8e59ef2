"""deer-flow's events for the items of one graph run, as its server maps them.

The mapping follows deer-flow's `src/server/app.py` (`_stream_graph_events` and the helpers
it calls): the agent is the first namespace element (a subgraph's node) or the message's
`langgraph_node`; AI chunks become `message_chunk`, `tool_calls` or `tool_call_chunks`;
tool messages become `tool_call_result`; an `__interrupt__` update becomes `interrupt`
with the plan options; `citations` found in the state updates are sent once, after the run.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage

from streaming.sources.base import Event
from streaming.sources.think import ThinkStripper, strip_think

INTERRUPT_OPTIONS = (
    {"text": "Edit plan", "value": "edit_plan"},
    {"text": "Start research", "value": "accepted"},
)
# deer-flow's bounds on the search for `citations` in one update.
CITATIONS_MAX_DEPTH = 5
CITATIONS_MAX_NODES = 5000


class GraphEvents:
    """Map the items of one `astream(..., subgraphs=True)` run, keeping what spans items."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.citations: list[dict[str, Any]] = []
        self._strippers: dict[str | None, ThinkStripper] = {}

    def events(self, namespace: Sequence[str], data: Any) -> list[Event]:
        """Return the deer-flow events for one item (namespace, mode, data) of the run."""
        if isinstance(data, dict):
            self.citations = merge_citations(self.citations, find_citations(data))
            interrupts = data.get("__interrupt__")
            return [interrupt_event(interrupts[0], self.thread_id)] if interrupts else []
        message, metadata = data
        agent = namespace[0].split(":")[0] if namespace else metadata.get("langgraph_node")
        event = self._message_event(message, metadata, agent or "unknown")
        return [event] if event is not None else []

    def citations_event(self, final_state: Mapping[str, Any] | None) -> Event | None:
        """Return the `citations` event: those of the updates, else the final state's."""
        citations = self.citations or list((final_state or {}).get("citations") or [])
        if not citations:
            return None
        return Event("citations", {"thread_id": self.thread_id, "citations": citations})

    def _message_event(
        self, message: BaseMessage, metadata: Mapping[str, Any], agent: str
    ) -> Event | None:
        data: dict[str, Any] = {
            "thread_id": self.thread_id,
            "agent": agent,
            "id": message.id,
            "role": "assistant",
            "checkpoint_ns": metadata.get("checkpoint_ns", ""),
            "langgraph_node": metadata.get("langgraph_node", ""),
            "langgraph_path": metadata.get("langgraph_path", ""),
            "langgraph_step": metadata.get("langgraph_step", ""),
            "content": self._content(message),
        }
        if reasoning := message.additional_kwargs.get("reasoning_content"):
            data["reasoning_content"] = reasoning
        if finish_reason := message.response_metadata.get("finish_reason"):
            data["finish_reason"] = finish_reason
        if isinstance(message, ToolMessage):
            name = "tool_call_result"
            data["tool_call_id"] = message.tool_call_id
        elif not isinstance(message, AIMessageChunk):
            return None
        elif message.tool_calls:
            name = "tool_calls"
            data["tool_calls"] = message.tool_calls
            if joined := tool_call_chunks(message.tool_call_chunks):
                data["tool_call_chunks"] = joined
        elif message.tool_call_chunks:
            name = "tool_call_chunks"
            data["tool_call_chunks"] = tool_call_chunks(message.tool_call_chunks)
        else:
            name = "message_chunk"
        if data["content"] == "":
            del data["content"]
        return Event(name, data)

    def _content(self, message: BaseMessage) -> str:
        """Return the text to send, think blocks stripped across a message's chunks."""
        content = message.content
        if not isinstance(content, str):
            return json.dumps(content, ensure_ascii=False)
        if not isinstance(message, AIMessageChunk):
            return strip_think(content)
        stripper = self._strippers.setdefault(message.id, ThinkStripper())
        text = stripper.feed(content)
        if message.response_metadata.get("finish_reason"):
            text += stripper.flush()
            del self._strippers[message.id]
        return text


def tool_call_chunks(chunks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return a message's tool-call chunks as deer-flow sends them: one per call index.

    Fragments of one index are joined (the first name and id win, missing ones are "");
    a fragment without an index stays apart, ahead of the joined ones.
    """
    loose: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        index, kind = chunk.get("index"), chunk.get("type", "")
        if index is None:
            name, id, args = chunk.get("name", ""), chunk.get("id", ""), chunk.get("args", "")
            loose.append(
                {"name": name, "args": sanitize_args(args), "id": id, "index": 0, "type": kind}
            )
            continue
        empty = {"name": "", "args": "", "id": "", "index": index, "type": kind}
        joined = by_index.setdefault(index, empty)
        joined["name"] = joined["name"] or chunk.get("name") or ""
        joined["id"] = joined["id"] or chunk.get("id") or ""
        joined["args"] += chunk.get("args") or ""
    for joined in by_index.values():
        joined["args"] = sanitize_args(joined["args"])
    return loose + [by_index[index] for index in sorted(by_index)]


def sanitize_args(args: Any) -> str:
    """Escape brackets in argument fragments, as deer-flow's `sanitize_args` does."""
    if not isinstance(args, str):
        return ""
    return (
        args.replace("[", "&#91;")
        .replace("]", "&#93;")
        .replace("{", "&#123;")
        .replace("}", "&#125;")
    )


def interrupt_event(interrupt: Any, thread_id: str) -> Event:
    """Return the plan review's `interrupt` event."""
    # deer-flow used the interrupt's `ns[0]`; LangGraph 0.6 replaced it with a unique `id`.
    value = interrupt.value
    data: dict[str, Any] = {
        "thread_id": thread_id,
        "id": getattr(interrupt, "id", None) or thread_id,
        "role": "assistant",
        "content": value if isinstance(value, str) else json.dumps(value, default=str),
        "finish_reason": "interrupt",
        "options": [dict(option) for option in INTERRUPT_OPTIONS],
    }
    if data["content"] == "":
        del data["content"]
    return Event("interrupt", data)


def find_citations(update: Mapping[str, Any]) -> list[Any]:
    """Return the `citations` lists anywhere in a state update, breadth first."""
    found: list[Any] = []
    queue: deque[tuple[Mapping[str, Any], int]] = deque([(update, 0)])
    visited = 0
    while queue and visited < CITATIONS_MAX_NODES:
        node, depth = queue.popleft()
        visited += 1
        if isinstance(citations := node.get("citations"), list):
            found.extend(citations)
        if depth >= CITATIONS_MAX_DEPTH:
            continue
        for value in node.values():
            children = value if isinstance(value, list) else [value]
            queue.extend((child, depth + 1) for child in children if isinstance(child, dict))
    return found


def merge_citations(known: list[dict[str, Any]], new: Iterable[Any]) -> list[dict[str, Any]]:
    """Add `new` citations to `known` once per URL, the more relevant one's details winning."""
    merged = list(known)
    index = {citation.get("url"): i for i, citation in enumerate(merged) if citation.get("url")}
    for citation in new:
        if not isinstance(citation, dict):
            continue
        url = citation.get("url", "")
        if url not in index:
            if url:
                index[url] = len(merged)
                merged.append(citation)
            continue
        current = merged[index[url]]
        if citation.get("relevance_score", 0) > current.get("relevance_score", 0):
            better = {key: citation.get(key) for key in ("title", "description", "snippet")}
            better = {key: value for key, value in better.items() if value}
            merged[index[url]] = current | better | {"relevance_score": citation["relevance_score"]}
    return merged
