"""The chat frames deer-flow's server sends, written out, and this server's made comparable.

deer-flow's `_make_event` writes `event: <name>\\ndata: <json.dumps(data)>\\n\\n`. This server
adds `id:` lines and a comment, and writes its JSON compact; both are read the same by
deer-flow's client. What differs from run to run is made constant: message ids (numbered
in order of appearance), task ids in `checkpoint_ns`, interrupt ids, and the thread id
(checked first: each test runs on a thread of its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tests.support.sseparse import deerflow_events

Frame = tuple[str, dict[str, Any]]
THREAD = "conformance"
_TASK = re.compile(r":[0-9a-f-]{16,}")


def encode(frames: Iterable[Frame]) -> str:
    """Return `frames` as deer-flow's server writes them."""
    return "".join(
        f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for name, data in frames
    )


def comparable(body: bytes, thread_id: str) -> list[Frame]:
    """Return the frames of a chat stream on `thread_id`, what varies per run made constant."""
    ids: dict[str, str] = {}
    frames = []
    for name, data in deerflow_events(body):
        assert data["thread_id"] == thread_id, (name, data)
        data["thread_id"] = THREAD
        if "id" in data:
            data["id"] = ids.setdefault(data["id"], f"id-{len(ids) + 1}")
        if "checkpoint_ns" in data:
            data["checkpoint_ns"] = _TASK.sub(":<task>", data["checkpoint_ns"])
        frames.append((name, data))
    return frames


def closing_chunks_apart(frames: list[Frame]) -> tuple[list[Frame], list[Frame]]:
    """Split off the empty chunk newer langchain-openai adds after a message's finish.

    langchain-openai 1.1.0 (deer-flow's lock) marks the chunk with `finish_reason` as the
    last one; later versions leave that to langchain-core, which adds an empty chunk.
    deer-flow's server forwards it as it does any chunk, and so does this one.
    """
    finished: set[str] = set()
    kept, closing = [], []
    for name, data in frames:
        bare = not {"content", "finish_reason", "tool_calls", "tool_call_chunks"} & data.keys()
        if name == "message_chunk" and bare and data["id"] in finished:
            closing.append((name, data))
            continue
        if "finish_reason" in data:
            finished.add(data["id"])
        kept.append((name, data))
    return kept, closing


def message(name: str, agent: str, id: int, step: int, **fields: Any) -> Frame:
    """Return a frame of a node's message, as deer-flow's `_create_event_stream_message`."""
    node = fields.pop("node", agent)
    data = {
        "thread_id": THREAD,
        "agent": agent,
        "id": f"id-{id}",
        "role": "assistant",
        "checkpoint_ns": f"{agent}:<task>",
        "langgraph_node": node,
        "langgraph_path": ["__pregel_pull", node],
        "langgraph_step": step,
    }
    return (name, data | fields)


def tool_call_frames(
    agent: str, id: int, step: int, name: str, call_id: str, args: str, partial: dict[str, Any]
) -> list[Frame]:
    """Return the frames of a streamed tool call (fake_openai.tool_call), as deer-flow's.

    `partial` is what LangChain parses from the first half of the arguments.
    """
    node = "agent" if agent == "researcher" else agent
    half = len(args) // 2
    escaped = [
        part.replace("{", "&#123;").replace("}", "&#125;") for part in (args[:half], args[half:])
    ]

    def chunks(name: str, args: str, id: str) -> list[dict[str, Any]]:
        return [{"name": name, "args": args, "id": id, "index": 0, "type": "tool_call_chunk"}]

    return [
        message("message_chunk", agent, id, step, node=node),
        message(
            "tool_calls",
            agent,
            id,
            step,
            node=node,
            tool_calls=[{"name": name, "args": {}, "id": call_id, "type": "tool_call"}],
            tool_call_chunks=chunks(name, "", call_id),
        ),
        message(
            "tool_calls",
            agent,
            id,
            step,
            node=node,
            tool_calls=[{"name": "", "args": partial, "id": None, "type": "tool_call"}],
            tool_call_chunks=chunks("", escaped[0], ""),
        ),
        message(
            "tool_call_chunks",
            agent,
            id,
            step,
            node=node,
            tool_call_chunks=chunks("", escaped[1], ""),
        ),
        message("message_chunk", agent, id, step, node=node, finish_reason="tool_calls"),
    ]


def text_frames(agent: str, id: int, step: int, *texts: str, node: str = "") -> list[Frame]:
    """Return the frames of a streamed answer (fake_openai.answer): role, texts, finish."""
    node = node or agent
    pieces = [message("message_chunk", agent, id, step, node=node)]
    for text in texts:
        content = {"content": text} if text else {}
        pieces.append(message("message_chunk", agent, id, step, node=node, **content))
    pieces.append(message("message_chunk", agent, id, step, node=node, finish_reason="stop"))
    return pieces


def interrupt_frame(id: int) -> Frame:
    """Return the plan review's interrupt frame."""
    return (
        "interrupt",
        {
            "thread_id": THREAD,
            "id": f"id-{id}",
            "role": "assistant",
            "content": "Please Review the Plan.",
            "finish_reason": "interrupt",
            "options": [
                {"text": "Edit plan", "value": "edit_plan"},
                {"text": "Start research", "value": "accepted"},
            ],
        },
    )
