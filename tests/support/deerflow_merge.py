"""deer-flow's web client's message state, rebuilt from chat events as it merges them.

Written after `web/src/core/store/store.ts` and `web/src/core/messages/merge-message.ts`
(deer-flow, branch main-1.x): events keyed by `data.id` create or extend a message;
`tool_call_result` finds the newest message holding that call; `citations` replaces the
research's citations; `error` ends the stream. One addition for resumes: a frame with
`"snapshot": true` starts its message afresh where it stands (snapshot.py on the server).

`state()` is what the page shows: the chunk lists the UI animates with are joined.
"""

from __future__ import annotations

import json
from typing import Any

_ENTITIES = (("&#91;", "["), ("&#93;", "]"), ("&#123;", "{"), ("&#125;", "}"))


def _convert(args: str) -> str:
    for entity, char in _ENTITIES:
        args = args.replace(entity, char)
    return args


def _fresh(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data["id"],
        "agent": data.get("agent"),
        "role": data.get("role"),
        "content": "",
        "contentChunks": [],
        "reasoningContent": "",
        "isStreaming": True,
        "toolCalls": None,
        "options": None,
        "finishReason": None,
    }


class DeerFlowClient:
    """Merge chat events as deer-flow's web client does."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.citations: Any = None
        self.ended: dict[str, Any] | None = None

    def feed(self, name: str, data: dict[str, Any]) -> None:
        """Merge one event."""
        if self.ended is not None:
            return
        if name == "error":
            self.ended = data
            return
        if name == "citations":
            self.citations = data.get("citations")
            return
        if name == "tool_call_result":
            holder = next(
                (
                    m
                    for m in reversed(self.messages.values())
                    if any(c["id"] == data["tool_call_id"] for c in m["toolCalls"] or [])
                ),
                None,
            )
            if holder is None:
                return
            message = holder
        else:
            if data["id"] not in self.messages:
                self.messages[data["id"]] = _fresh(data)
            elif data.get("snapshot"):
                fresh = _fresh(data)
                self.messages[data["id"]].update({k: fresh[k] for k in _RESET})
            message = self.messages[data["id"]]
        self._merge(message, name, data)

    def _merge(self, message: dict[str, Any], name: str, data: dict[str, Any]) -> None:
        if name == "message_chunk":
            if data.get("content"):
                message["content"] += data["content"]
                message["contentChunks"].append(data["content"])
            if data.get("reasoning_content"):
                message["reasoningContent"] += data["reasoning_content"]
        elif name in ("tool_calls", "tool_call_chunks"):
            self._merge_calls(message, name, data)
        elif name == "tool_call_result":
            call = next(c for c in message["toolCalls"] if c["id"] == data["tool_call_id"])
            call["result"] = data.get("content")
        elif name == "interrupt":
            message["isStreaming"] = False
            message["options"] = data.get("options")
        if data.get("finish_reason"):
            message["finishReason"] = data["finish_reason"]
            message["isStreaming"] = False
            for call in message["toolCalls"] or []:
                if call.get("argsChunks"):
                    try:
                        call["args"] = json.loads("".join(call["argsChunks"]))
                    except ValueError:
                        call["args"] = {}
                    del call["argsChunks"]
                if call["name"] == "direct_response" and (call["args"] or {}).get("message"):
                    message["content"] = call["args"]["message"]
                    message["contentChunks"] = [message["content"]]

    def _merge_calls(self, message: dict[str, Any], name: str, data: dict[str, Any]) -> None:
        calls = data.get("tool_calls") or []
        if name == "tool_calls" and calls and calls[0].get("name"):
            message["toolCalls"] = [
                {"id": c.get("id"), "name": c.get("name"), "args": c.get("args"), "result": None}
                for c in calls
            ]
        if message["toolCalls"] is None:
            message["toolCalls"] = []
        for chunk in data.get("tool_call_chunks") or []:
            if chunk.get("id"):
                call = next((c for c in message["toolCalls"] if c["id"] == chunk["id"]), None)
                if call is not None:
                    call["argsChunks"] = [_convert(chunk.get("args") or "")]
            else:
                streaming = next((c for c in message["toolCalls"] if c.get("argsChunks")), None)
                if streaming is not None:
                    streaming["argsChunks"].append(_convert(chunk.get("args") or ""))

    def state(self) -> dict[str, Any]:
        """Return what the page shows: messages in order, citations, how the stream ended."""
        messages = []
        for message in self.messages.values():
            shown = {k: v for k, v in message.items() if k != "contentChunks"}
            shown["toolCalls"] = [
                {
                    **{k: v for k, v in call.items() if k != "argsChunks"},
                    "argsText": "".join(call["argsChunks"]) if "argsChunks" in call else None,
                }
                for call in message["toolCalls"] or []
            ] or message["toolCalls"]
            messages.append(shown)
        return {"messages": messages, "citations": self.citations, "ended": self.ended}


# What a frame with "snapshot": true starts afresh (its place, agent and role stay).
_RESET = ["content", "contentChunks", "reasoningContent", "isStreaming", "toolCalls"]
_RESET += ["options", "finishReason"]


def merged(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Return the state a client reaches from `events`."""
    client = DeerFlowClient()
    for name, data in events:
        client.feed(name, data)
    return client.state()
