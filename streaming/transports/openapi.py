"""The OpenAPI 3.1 document of the HTTP API: request bodies from the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse

from streaming.api.bodies import NUL_FREE_TEXT
from streaming.api.event_ids import MAX_EVENT_ID
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.models import EndReason, Kind, Status, Transport
from streaming.runs.endings import FRAME_REASONS
from streaming.transports.http import ApiView
from streaming.transports.sse import SESSION_HEADER

API_VERSION = "0.1.0"
Schema = dict[str, Any]

STREAM_DESCRIPTION = """\
Server-Sent Events, LF line ends. The stream opens with a comment frame (`: stream open`);
`: ping` comments keep an idle stream alive. Each event is one frame: `id: <n>` (from 1
within the session; what `Last-Event-ID` names), `event: <name>` (prose text has none),
`data:`, blank line. Chat data is one line of JSON; prose text is sent as one `data:` line
per line, so a standard parser rebuilds it exactly. A stream that does not finish normally
ends with an `error` event. The schema describes one event as a standard parser dispatches
it (`id`, `event`, `data`), as OpenAPI 3.2's `itemSchema` does."""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _all_required(**properties: Schema) -> Schema:
    return _object(list(properties), **properties)


def _enum(values: list[str]) -> Schema:
    return {"type": "string", "enum": values}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STRING: Schema = {"type": "string"}
UUID: Schema = {"type": "string", "format": "uuid"}


def _event(name: str, data: Schema) -> Schema:
    """Return the schema of one event named `name` whose data is `data`."""
    return _object(
        ["id", "event", "data"],
        id={"type": "string", "pattern": "^[1-9][0-9]*$"},
        event={"const": name},
        data=data,
    )


def _json_data(name: str) -> Schema:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(name)}


def _with_message(required: list[str], **properties: Schema) -> Schema:
    return {"allOf": [_ref("MessageData"), _object(required, **properties)]}


CHAT_EVENTS = {
    "message_chunk": "MessageData",
    "tool_calls": "ToolCallsData",
    "tool_call_chunks": "ToolCallChunksData",
    "tool_call_result": "ToolCallResultData",
    "interrupt": "InterruptData",
    "citations": "CitationsData",
    "error": "EndData",
}
CHUNK = {"type": "object", "properties": {"args": {"type": ["string", "null"]}}}

EVENT_SCHEMAS: dict[str, Schema] = {
    "MessageData": _object(
        ["thread_id", "agent", "id", "role"],
        thread_id=STRING,
        agent=STRING,
        id=STRING,
        role={"const": "assistant"},
        content=STRING,
        reasoning_content=STRING,
        finish_reason=STRING,
    ),
    "ToolCallsData": _with_message(
        ["tool_calls", "tool_call_chunks"],
        tool_calls=_array(_object(["name", "args", "id"], name=STRING, args={"type": "object"})),
        tool_call_chunks=_array(CHUNK),
    ),
    "ToolCallChunksData": _with_message(["tool_call_chunks"], tool_call_chunks=_array(CHUNK)),
    "ToolCallResultData": _with_message(["tool_call_id"], tool_call_id=STRING),
    "InterruptData": _object(
        ["thread_id", "id", "role", "finish_reason", "options"],
        thread_id=STRING,
        id=STRING,
        role={"const": "assistant"},
        content=STRING,
        finish_reason={"const": "interrupt"},
        options=_array(_object(["text", "value"], text=STRING, value=STRING)),
    ),
    "CitationsData": _object(["thread_id", "citations"], thread_id=STRING, citations=_array({})),
    "EndData": _object(
        ["error", "reason"],
        thread_id={**STRING, "description": "Chat streams only."},
        error={**STRING, "description": "A short public message."},
        reason=_enum(sorted(FRAME_REASONS)),
    ),
    "ChatEvent": {"oneOf": [_event(name, _json_data(data)) for name, data in CHAT_EVENTS.items()]},
    "ProseEvent": {"oneOf": [_event("message", STRING), _event("error", _json_data("EndData"))]},
}

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": {
        **_object(["detail"], detail={"anyOf": [STRING, _array(_ref("Issue"))]}),
        "description": "Every refusal of the API: FastAPI's shape, which deer-flow handles.",
    },
    "Issue": {
        **_object(
            ["type", "loc", "msg"],
            type=STRING,
            loc=_array({"type": ["string", "integer"]}),
            msg=STRING,
        ),
        "description": "One reason a body was refused (pydantic's error, without the input).",
    },
    "SessionRecord": {
        **_all_required(
            id=UUID,
            kind=_enum(Kind.values),
            transport=_enum(Transport.values),
            thread_id={**STRING, "description": "Empty for prose."},
            status=_enum(Status.values),
            end_reason={**_enum(EndReason.values), "description": "Empty unless it stopped."},
            started_at={"type": "string", "format": "date-time"},
            ended_at={"type": ["string", "null"], "format": "date-time"},
            duration_seconds={"type": ["number", "null"]},
            events_sent={"type": "integer", "minimum": 0},
            last_event_id={"type": "integer", "minimum": 0},
            source={**STRING, "description": "The event source that ran it."},
        ),
        "description": "One stream's record; fields may be added, these keep their names.",
    },
    "CancelAccepted": _object(["id", "status"], id=UUID, status={"const": "cancelling"}),
    "Config": _object(
        ["rag", "models"],
        rag=_object(["provider"], provider={"type": ["string", "null"]}),
        models=_object(["basic", "reasoning"], basic=_array(STRING), reasoning=_array(STRING)),
    ),
    "Health": _object(
        ["status", "database", "channel_layer"],
        status=_enum(["ok", "error"]),
        database=_enum(["ok", "error"]),
        channel_layer=_enum(["ok", "error"]),
        live_streams={"type": "integer", "minimum": 0},
        tasks={"type": "integer", "minimum": 0},
    ),
}

# `zap` needs a command with some non-blank text (ProseRequest's model validator).
ZAP_NEEDS_COMMAND: Schema = {
    "if": {"properties": {"option": {"const": "zap"}}, "required": ["option"]},
    "then": {
        "properties": {"command": {"type": "string", "pattern": r"\S"}},
        "required": ["command"],
    },
}


def _request_schemas() -> dict[str, Schema]:
    """Return the request models' JSON schemas (and their parts) under their names."""
    schemas: dict[str, Schema] = {}
    for model in (ChatRequest, ProseRequest):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["ProseRequest"] |= ZAP_NEEDS_COMMAND
    for schema in schemas.values():
        _forbid_nul(schema)
    return schemas


def _forbid_nul(schema: Any) -> None:
    """Add the server's no-NUL rule (`payloads.validate`) to every free-text string."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_nul(item)
    elif isinstance(schema, dict):
        if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
            schema["pattern"] = NUL_FREE_TEXT
        for key, value in schema.items():
            if key != "if":
                _forbid_nul(value)


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, **headers: str) -> Schema:
    response = _json(description, _ref("Error"))
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": STRING} for name, text in headers.items()
        }
    return response


RETRY = "Seconds to wait before trying again."
ERRORS: dict[str, Schema] = {
    "400": _error("The body is not valid JSON."),
    "401": _error("A token is required and missing or wrong.", **{"WWW-Authenticate": "Bearer"}),
    "403": _error("The request uses a feature the server has disabled."),
    "404": _error("No such session."),
    "409": _error("The session has already ended; nothing was changed."),
    "410": _error("The session's events are no longer kept."),
    "413": _error("The body is larger than the server accepts."),
    "422": _error(
        "The request is well-formed JSON but not valid: see `detail`. Text must not contain "
        "U+0000 and values must not nest deeper than 64 levels (the session's record keeps "
        "them)."
    ),
    "429": _error("Too many live streams from this client.", **{"Retry-After": RETRY}),
    "503": _error("The server is at its limit of live streams.", **{"Retry-After": RETRY}),
}


def _errors(*statuses: str) -> dict[str, Schema]:
    return {status: {"$ref": f"#/components/responses/{status}"} for status in statuses}


def _event_stream(description: str, events: Schema, *, links: bool) -> Schema:
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


# The token applies only when the server sets STREAM_API_TOKEN: either requirement passes.
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]
SESSION_ID: Schema = {"name": "session_id", "in": "path", "required": True, "schema": UUID}
EVENT_ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID}


def _operation(operation_id: str, tag: str, summary: str, **fields: Any) -> Schema:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, **fields}


def _stream_post(operation_id: str, model: str, summary: str, events: str, **body: Any) -> Schema:
    extra = ("403",) if model == "ChatRequest" else ()
    content = {"application/json": {"schema": _ref(model)}}
    return {
        "post": _operation(
            operation_id,
            "streams",
            summary,
            security=SECURITY,
            requestBody={"required": True, "content": content, **body},
            responses={
                "200": _event_stream("The stream.", _ref(events), links=True),
                **_errors("400", "401", *extra, "413", "422", "429", "503"),
            },
        )
    }


def _paths() -> dict[str, Schema]:
    return {
        "/api/chat/stream": _stream_post(
            "chatStream",
            "ChatRequest",
            "Run deer-flow's research workflow and stream its events",
            "ChatEvent",
            required=False,
            description="Unknown fields are ignored; an empty body counts as `{}`. A "
            "non-empty `mcp_settings` gets 403 unless the server enables MCP "
            "(ENABLE_MCP_SERVER_CONFIGURATION).",
        ),
        "/api/prose/generate": _stream_post(
            "proseGenerate", "ProseRequest", "Stream the prose writer's text", "ProseEvent"
        ),
        "/api/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": _operation(
                "getSession",
                "sessions",
                "One session's record",
                security=SECURITY,
                responses={
                    "200": _json("The record.", _ref("SessionRecord")),
                    **_errors("401", "404"),
                },
            ),
        },
        "/api/sessions/{session_id}/cancel": {
            "parameters": [SESSION_ID],
            "post": _operation(
                "cancelSession",
                "sessions",
                "Cancel a live stream, on whichever worker runs it",
                description="The stream ends with an `error` event, reason `cancelled`.",
                security=SECURITY,
                responses={
                    "202": _json("The cancel was sent.", _ref("CancelAccepted")),
                    **_errors("401", "404", "409"),
                },
            ),
        },
        "/api/sessions/{session_id}/stream": {
            "parameters": [SESSION_ID],
            "get": _operation(
                "resumeSession",
                "sessions",
                "Replay a session's events after an id, then follow it live",
                security=SECURITY,
                parameters=[
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "description": "The last event id the client saw (absent: 0, all).",
                        "schema": EVENT_ID,
                    },
                    {
                        "name": "last_event_id",
                        "in": "query",
                        "description": "As `Last-Event-ID`, for EventSource; the header wins.",
                        "schema": EVENT_ID,
                    },
                ],
                responses={
                    "200": _event_stream(
                        "The events after that id, then live ones.",
                        {"anyOf": [_ref("ChatEvent"), _ref("ProseEvent")]},
                        links=False,
                    ),
                    **_errors("401", "404", "410", "422"),
                },
            ),
        },
        "/api/config": {
            "get": _operation(
                "getConfig",
                "server",
                "The server's configuration in deer-flow's shape",
                responses={"200": _json("RAG provider and models.", _ref("Config"))},
            )
        },
        "/healthz": {
            "get": _operation(
                "health",
                "server",
                "Whether the database and the channel layer answer",
                responses={
                    "200": _json("Both answer.", _ref("Health")),
                    "503": _json("One does not.", _ref("Health")),
                },
            )
        },
        "/api/openapi.json": {
            "get": _operation(
                "openapi",
                "server",
                "This document",
                responses={"200": _json("OpenAPI 3.1.", {"type": "object"})},
            )
        },
        "/": {
            "get": _operation(
                "index",
                "client",
                "The web client",
                responses={
                    "200": {
                        "description": "The page.",
                        "content": {"text/html": {"schema": STRING}},
                    }
                },
            )
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once; callers must not change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deer-flow streaming server (Django)",
            "version": API_VERSION,
            "description": "deer-flow's chat and prose streams, and their sessions. The "
            "schemas say what clients send; like deer-flow (FastAPI), the server also takes "
            'what pydantic\'s lax mode converts, such as `"true"` for `true`.',
        },
        "paths": _paths(),
        "components": {
            "schemas": {**_request_schemas(), **EVENT_SCHEMAS, **RESPONSE_SCHEMAS},
            "responses": ERRORS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Required only when the server sets STREAM_API_TOKEN.",
                }
            },
        },
    }


class OpenAPIView(ApiView):
    """`GET /api/openapi.json`: the OpenAPI document, no token needed."""

    async def get(self, request: HttpRequest) -> JsonResponse:
        """Return the document."""
        return JsonResponse(openapi_document())
