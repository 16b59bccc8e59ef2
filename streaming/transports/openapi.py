"""The OpenAPI 3.1 document of the HTTP API, built from what the views themselves use.

Request bodies are the request models' schemas and JSON answers the response models' (the
views serialise through them); each operation's refusals are members of the table of
refusals (statuses, texts, `Retry-After`) or, for a body, what the body parser raises. The
event streams are described in `openapi_events`. The 405 that any endpoint answers to a
method it does not serve (`Refusal.METHOD_NOT_ALLOWED`) has no place in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from streaming.api.bodies import NUL_FREE_TEXT
from streaming.api.errors import Refusal
from streaming.api.event_ids import MAX_EVENT_ID
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.api.responses import (
    CancelAccepted,
    Config,
    ErrorBody,
    Health,
    Ready,
    SessionRecord,
)
from streaming.transports.http import ApiView
from streaming.transports.openapi_events import EVENT_SCHEMAS, UUID, Schema, event_stream, ref
from streaming.transports.openapi_refusals import body_refusals, expired, refusals
from streaming.transports.openapi_server import json_answer, operation, server_paths

API_VERSION = "0.1.0"

# `zap` needs a command with some non-blank text (ProseRequest's model validator).
ZAP_NEEDS_COMMAND: Schema = {
    "if": {"properties": {"option": {"const": "zap"}}, "required": ["option"]},
    "then": {
        "properties": {"command": {"type": "string", "pattern": r"\S"}},
        "required": ["command"],
    },
}


def merged(parts: Iterable[tuple[str, Schema]], into: dict[str, Schema]) -> dict[str, Schema]:
    """Add the named schemas to `into`, refusing two different schemas of one name."""
    for name, schema in parts:
        if into.setdefault(name, schema) != schema:
            raise ValueError(f"Two different schemas are named {name}.")
    return into


def model_schemas(*models: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Schema]:
    """Return the models' JSON schemas (and their parts) under their names."""
    schemas: dict[str, Schema] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        merged([*schema.pop("$defs", {}).items(), (model.__name__, schema)], into=schemas)
    return schemas


def _request_schemas() -> dict[str, Schema]:
    """Return the request models' schemas with the rules the views add to pydantic's."""
    schemas = model_schemas(ChatRequest, ProseRequest, mode="validation")
    schemas["ProseRequest"] |= ZAP_NEEDS_COMMAND
    for schema in schemas.values():
        _forbid_nul(schema)
    return schemas


def _forbid_nul(schema: Any) -> None:
    """Add the server's no-NUL rule (`bodies.validate`) to every free-text string."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_nul(item)
    elif isinstance(schema, dict):
        if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
            schema["pattern"] = NUL_FREE_TEXT
        if schema.get("type") == "object" and schema.get("additionalProperties") is True:
            # A free-form object's own keys; deeper values would need a recursive schema,
            # which the description states instead (`mcp_settings`).
            schema["propertyNames"] = {"pattern": NUL_FREE_TEXT}
        for key, value in schema.items():
            if key != "if":
                _forbid_nul(value)


# The token applies only when the server sets STREAM_API_TOKEN: either requirement passes.
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]
SESSION_ID: Schema = {"name": "session_id", "in": "path", "required": True, "schema": UUID}
EVENT_ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID}
# A new stream may be refused for these (admission, or a failure while it opens).
OPENING = (Refusal.CLIENT_AT_LIMIT, Refusal.AT_LIMIT, Refusal.SHUTTING_DOWN, Refusal.CANNOT_OPEN)
# A session's endpoints; an id that is not a UUID is a path of no endpoint (`NOT_FOUND`).
SESSION = (Refusal.BAD_TOKEN, Refusal.NO_SESSION, Refusal.NOT_FOUND)


def _stream_post(
    operation_id: str, model: type[BaseModel], summary: str, events: str, *more: Refusal
) -> Schema:
    content = {"application/json": {"schema": ref(model.__name__)}}
    return operation(
        operation_id,
        "streams",
        summary,
        security=SECURITY,
        requestBody={"required": True, "content": content},
        responses={
            "200": event_stream("The stream.", ref(events), links=True),
            **refusals(Refusal.BAD_TOKEN, *body_refusals(), *more, *OPENING),
        },
    )


def _paths() -> dict[str, Schema]:
    chat = _stream_post(
        "chatStream",
        ChatRequest,
        "Run deer-flow's research workflow and stream its events",
        "ChatEvent",
        Refusal.MCP_DISABLED,
    )
    chat["requestBody"] |= {
        "required": False,
        "description": "Unknown fields are ignored; an empty body counts as `{}`. A "
        "non-empty `mcp_settings` gets 403 unless the server enables MCP "
        "(ENABLE_MCP_SERVER_CONFIGURATION).",
    }
    last_event_id = "The last event id the client saw (absent: 0, all)."
    return {
        "/api/chat/stream": {"post": chat},
        "/api/prose/generate": {
            "post": _stream_post(
                "proseGenerate", ProseRequest, "Stream the prose writer's text", "ProseEvent"
            )
        },
        "/api/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": operation(
                "getSession",
                "sessions",
                "One session's record",
                security=SECURITY,
                responses={"200": json_answer("The record.", SessionRecord), **refusals(*SESSION)},
            ),
        },
        "/api/sessions/{session_id}/cancel": {
            "parameters": [SESSION_ID],
            "post": operation(
                "cancelSession",
                "sessions",
                "Cancel a live stream, on whichever worker runs it",
                description="The stream ends with an `error` event, reason `cancelled`.",
                security=SECURITY,
                responses={
                    "202": json_answer("The cancel was sent.", CancelAccepted),
                    **refusals(*SESSION, Refusal.ALREADY_ENDED),
                },
            ),
        },
        "/api/sessions/{session_id}/stream": {
            "parameters": [SESSION_ID],
            "get": operation(
                "resumeSession",
                "sessions",
                "Replay a session's events after an id, then follow it live",
                security=SECURITY,
                parameters=[
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "description": last_event_id,
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
                    "200": event_stream(
                        "The events after that id, then live ones.",
                        {"anyOf": [ref("ChatEvent"), ref("ProseEvent")]},
                        links=False,
                    ),
                    **refusals(*SESSION, Refusal.NOT_KEPT, expired(), Refusal.BAD_EVENT_ID),
                },
            ),
        },
        "/api/config": {
            "get": operation(
                "getConfig",
                "server",
                "The server's configuration in deer-flow's shape",
                responses={"200": json_answer("RAG provider and models.", Config)},
            )
        },
        **server_paths(),
    }


RESPONSE_MODELS = (SessionRecord, CancelAccepted, Config, Health, Ready, ErrorBody)


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once; callers must not change it)."""
    schemas = merged(model_schemas(*RESPONSE_MODELS, mode="serialization").items(), into={})
    merged(_request_schemas().items(), into=schemas)
    merged(EVENT_SCHEMAS.items(), into=schemas)
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
            "schemas": schemas,
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
