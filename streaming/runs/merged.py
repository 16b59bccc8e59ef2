"""A chat message as deer-flow's web client holds it after merging its events.

deer-flow's web client merges a chat stream by message id: `message_chunk` appends content
and reasoning; a `tool_calls` whose first call is named replaces the message's calls; a
chunk with an id restarts that call's argument text, one without extends the first call
that has text; `tool_call_result` sets the result of the call with that id; `interrupt`
sets the options; any `finish_reason` ends the message, parses its calls' argument texts
and lets a `direct_response` call's `message` replace the content. `RunSnapshot.fold`
(snapshot.py) applies the same rules to each event as the log takes it: O(1) per event,
texts grow by appending and nothing is merged again, so what is kept is bounded by the
stream's output, not by its number of events. `Message.frames()` is the way back: the few
events that rebuild the message from nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# The fields of a chat event that are merged, not copied from its first event.
_MERGED = {
    "content",
    "reasoning_content",
    "finish_reason",
    "tool_calls",
    "tool_call_chunks",
    "tool_call_id",
    "options",
}
_ENTITIES = (("&#91;", "["), ("&#93;", "]"), ("&#123;", "{"), ("&#125;", "}"))


class Text:
    """A string built by appending, each character copied O(log n) times (no quadratic +=).

    Pieces gather in a short tail, joined into a block every `TAIL` pieces; blocks merge
    while the one before is at most twice as long, so there are O(log n) of them.
    """

    __slots__ = ("blocks", "tail")

    TAIL = 32

    def __init__(self, text: str = "") -> None:
        self.blocks = [text] if text else []
        self.tail: list[str] = []

    def add(self, text: str) -> None:
        """Append `text`."""
        tail = self.tail
        tail.append(text)
        if len(tail) >= self.TAIL:
            blocks = self.blocks
            blocks.append("".join(tail))
            tail.clear()
            while len(blocks) > 1 and len(blocks[-2]) <= 2 * len(blocks[-1]):
                last = blocks.pop()
                blocks[-1] += last

    def __str__(self) -> str:
        return "".join(self.blocks) + "".join(self.tail)


def _unescape(args: str) -> str:
    """Return tool-call argument text as deer-flow's client converts it (idempotent)."""
    if "&#" not in args:
        return args
    for entity, char in _ENTITIES:
        args = args.replace(entity, char)
    return args


def _parsed(args: str) -> Any:
    """Return argument text parsed as the client parses complete JSON ({} where it cannot)."""
    try:
        value = json.loads(args)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"_parsed": value}


class ToolCall:
    """One tool call of a message, as the client holds it."""

    __slots__ = ("args", "chunks", "id", "name", "result")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.id: str = raw.get("id") or ""
        self.name: str = raw.get("name") or ""
        self.args: Any = raw.get("args", {})
        self.chunks: Text | None = None  # the argument text while it streams
        self.result: Any = None  # None: no result yet


class Message:
    """One message as the client holds it after merging its events."""

    __slots__ = ("content", "finish", "head", "options", "reasoning", "tool_calls", "touched")

    def __init__(self, head: Mapping[str, Any]) -> None:
        self.head = {k: v for k, v in head.items() if k not in _MERGED}
        self.content = Text()
        self.reasoning = Text()
        self.tool_calls: list[ToolCall] | None = None
        self.finish: str | None = None
        self.options: Any = None
        self.touched = 0  # the id of the last event that changed it

    def merge(self, name: str, data: Mapping[str, Any]) -> None:
        """Merge one event as deer-flow's `mergeMessage` does."""
        if name == "message_chunk":
            if content := data.get("content"):
                self.content.add(content)
            if reasoning := data.get("reasoning_content"):
                self.reasoning.add(reasoning)
        elif name in ("tool_calls", "tool_call_chunks"):
            self._merge_calls(name, data)
        elif name == "interrupt":
            self.options = data.get("options")
        elif name == "tool_call_result":
            self.set_result(data.get("tool_call_id") or "", data.get("content"))
        if finish := data.get("finish_reason"):
            self._finish(finish)

    def _merge_calls(self, name: str, data: Mapping[str, Any]) -> None:
        raw_calls = data.get("tool_calls") or []
        if name == "tool_calls" and raw_calls and raw_calls[0].get("name"):
            self.tool_calls = [ToolCall(raw) for raw in raw_calls]
        calls = self.tool_calls = self.tool_calls or []
        for chunk in data.get("tool_call_chunks") or []:
            args = _unescape(chunk.get("args") or "")
            if chunk_id := chunk.get("id"):
                for call in calls:
                    if call.id == chunk_id:
                        call.chunks = Text(args)
                        break
            else:
                for call in calls:
                    if call.chunks is not None:
                        call.chunks.add(args)
                        break

    def set_result(self, call_id: str, result: Any) -> None:
        """Set the result of the call `call_id` (the client's `tool_call_result`)."""
        for call in self.tool_calls or []:
            if call.id == call_id:
                call.result = result
                return

    def _finish(self, reason: str) -> None:
        self.finish = reason
        for call in self.tool_calls or []:
            if call.chunks is not None:
                call.args = _parsed(str(call.chunks))
                call.chunks = None
            message = call.args.get("message") if isinstance(call.args, dict) else None
            if call.name == "direct_response" and message:
                self.content = Text(str(message))

    def frames(self) -> list[tuple[str, dict[str, Any]]]:
        """Return the events that rebuild this message from nothing, in order.

        The end comes first, while the message is empty (so ending parses and replaces
        nothing); the calls then carry their parsed arguments and any text still streaming.
        """
        content, reasoning = str(self.content), str(self.reasoning)
        parts: list[tuple[str, dict[str, Any]]] = []
        if content or reasoning or (not self.tool_calls and self.options is None):
            text = {"content": content} if content else {}
            if reasoning:
                text["reasoning_content"] = reasoning
            parts.append(("message_chunk", text))
        if self.tool_calls is not None:  # even none: the client then holds an empty list
            calls = [
                {"name": c.name, "args": c.args, "id": c.id or None, "type": "tool_call"}
                for c in self.tool_calls
            ]
            chunks = [
                {"name": c.name, "args": str(c.chunks), "id": c.id, "index": i}
                | {"type": "tool_call_chunk"}
                for i, c in enumerate(self.tool_calls)
                if c.chunks is not None
            ]
            parts.append(("tool_calls", {"tool_calls": calls, "tool_call_chunks": chunks}))
        if self.options is not None:
            parts.append(("interrupt", {"options": self.options}))
        parts += [
            ("tool_call_result", {"tool_call_id": c.id, "content": c.result})
            for c in self.tool_calls or []
            if c.result is not None and c.id
        ]
        frames = [(name, self.head | data) for name, data in parts]
        frames[0][1]["snapshot"] = True
        if self.finish:
            frames[0][1]["finish_reason"] = self.finish
        return frames
