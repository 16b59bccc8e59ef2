"""The SSE streams as the OpenAPI document describes them: one event as a parser reads it.

The events' data are the sources' (deer-flow's) shapes, which no model here owns, so they
are written as JSON Schema; the final `error` event's reasons and messages are read from
the table of endings.
"""

from __future__ import annotations

from typing import Any

from streaming.runs.endings import ENDINGS, FRAME_REASONS
from streaming.transports.sse import SESSION_HEADER

Schema = dict[str, Any]

STREAM_DESCRIPTION = """\
Server-Sent Events, LF line ends. The stream opens with a comment frame (`: stream open`);
`: ping` comments keep an idle stream alive. Each event is one frame: `id: <n>` (from 1
within the session; what `Last-Event-ID` names), `event: <name>` (prose text has none),
`data:`, blank line. Chat data is one line of JSON; prose text is sent as one `data:` line
per line, so a standard parser rebuilds it exactly. A stream that does not finish normally
ends with an `error` event. The schema describes one event as a standard parser dispatches
it (`id`, `event`, `data`), as OpenAPI 3.2's `itemSchema` does.

A resume from an id whose events are no longer kept starts with compacted frames: per chat
message changed since that id, the frames that rebuild it from nothing, the first with
`"snapshot": true` (start that message afresh where it stands); for prose, one `snapshot`
event holding the whole text so far. Their ids never go down and stay at or below the last
event they stand for; the live events carry on after it."""

STRING: Schema = {"type": "string"}
UUID: Schema = {"type": "string", "format": "uuid"}
ASSISTANT: Schema = {"const": "assistant"}
CHUNKS: Schema = {
    "type": "array",
    "items": {"type": "object", "properties": {"args": {"type": ["string", "null"]}}},
}


def ref(name: str) -> Schema:
    """Return a reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _message_and(required: list[str], properties: Schema) -> Schema:
    """Return the schema of a message's data with more `properties`."""
    extra = {"type": "object", "required": required, "properties": properties}
    return {"allOf": [ref("MessageData"), extra]}


DATA_SCHEMAS: dict[str, Schema] = {
    "MessageData": {
        "type": "object",
        "required": ["thread_id", "agent", "id", "role"],
        "properties": {
            "thread_id": STRING,
            "agent": STRING,
            "id": STRING,
            "role": ASSISTANT,
            "content": STRING,
            "reasoning_content": STRING,
            "finish_reason": STRING,
            "snapshot": {
                "const": True,
                "description": "Only on a resume's compacted frames: this message starts "
                "afresh here.",
            },
        },
    },
    "ToolCallsData": _message_and(
        ["tool_calls", "tool_call_chunks"],
        {
            "tool_calls": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "args", "id"],
                    "properties": {"name": STRING, "args": {"type": "object"}, "id": STRING},
                },
            },
            "tool_call_chunks": CHUNKS,
        },
    ),
    "ToolCallChunksData": _message_and(["tool_call_chunks"], {"tool_call_chunks": CHUNKS}),
    "ToolCallResultData": _message_and(["tool_call_id"], {"tool_call_id": STRING}),
    "InterruptData": {
        "type": "object",
        "required": ["thread_id", "id", "role", "finish_reason", "options"],
        "properties": {
            "thread_id": STRING,
            "id": STRING,
            "role": ASSISTANT,
            "content": STRING,
            "finish_reason": {"const": "interrupt"},
            "snapshot": {"const": True},
            "options": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text", "value"],
                    "properties": {"text": STRING, "value": STRING},
                },
            },
        },
    },
    "CitationsData": {
        "type": "object",
        "required": ["thread_id", "citations"],
        "properties": {"thread_id": STRING, "citations": {"type": "array", "items": {}}},
    },
    "EndData": {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "thread_id": {**STRING, "description": "Chat streams only."},
            "error": {
                **STRING,
                "description": "A short public message.",
                "examples": [e.frame.message for e in ENDINGS.values() if e.frame],
            },
            "reason": {"type": "string", "enum": sorted(FRAME_REASONS)},
        },
    },
}

# Each chat event's name, and the schema of its data.
CHAT_EVENTS = {
    "message_chunk": "MessageData",
    "tool_calls": "ToolCallsData",
    "tool_call_chunks": "ToolCallChunksData",
    "tool_call_result": "ToolCallResultData",
    "interrupt": "InterruptData",
    "citations": "CitationsData",
    "error": "EndData",
}


def _event(name: str, data: Schema) -> Schema:
    """Return the schema of one event named `name` whose data is `data`."""
    return {
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "event": {"const": name},
            "data": data,
        },
    }


def _json_data(name: str) -> Schema:
    """Return the schema of data that is one line of JSON shaped as schema `name`."""
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": ref(name)}


EVENT_SCHEMAS: dict[str, Schema] = {
    **DATA_SCHEMAS,
    "ChatEvent": {"oneOf": [_event(name, _json_data(data)) for name, data in CHAT_EVENTS.items()]},
    "ProseEvent": {
        "oneOf": [
            _event("message", STRING),
            _event("snapshot", {**STRING, "description": "A resume's whole text so far."}),
            _event("error", _json_data("EndData")),
        ]
    },
}


def event_stream(description: str, events: Schema, *, links: bool) -> Schema:
    """Return a `text/event-stream` response of `events`, linked to its session if `links`."""
    response: Schema = {
        "description": f"{description}\n\n{STREAM_DESCRIPTION}",
        "headers": {SESSION_HEADER: {"description": "The session's id.", "schema": UUID}},
        "content": {"text/event-stream": {"schema": events}},
    }
    if links:
        session_id = {"session_id": f"$response.header.{SESSION_HEADER}"}
        response["links"] = {
            name: {"operationId": operation, "parameters": session_id}
            for name, operation in [
                ("session", "getSession"),
                ("resume", "resumeSession"),
                ("cancel", "cancelSession"),
            ]
        }
    return response
