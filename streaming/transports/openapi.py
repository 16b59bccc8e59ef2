"""The OpenAPI 3.1 document of the HTTP API, built from what the views themselves use.

Request bodies are the request models' schemas and JSON answers the response models' (the
views serialise through them); each operation's refusals are members of the table of
refusals (statuses, texts, `Retry-After`) or, for a body, what the body parser raises. The
event streams are described in `openapi_events`. The 405 that any endpoint answers to a
method it does not serve (`Refusal.METHOD_NOT_ALLOWED`) has no place in OpenAPI.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel

from streaming.api.errors import Refusal
from streaming.api.event_ids import MAX_EVENT_ID
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.api.responses import (
    CancelAccepted,
    Config,
    ErrorBody,
    Health,
    ObserverLink,
    Ready,
    SessionRecord,
    ThreadBusy,
    ThreadSessions,
)
from streaming.conf import AuthMode, conf
from streaming.transports.http import ApiView
from streaming.transports.openapi_access import access_refusals, guarded, security_schemes
from streaming.transports.openapi_events import EVENT_SCHEMAS, Schema, event_stream, ref
from streaming.transports.openapi_refusals import body_refusals, expired, refusals
from streaming.transports.openapi_schemas import merged, model_schemas, request_schemas
from streaming.transports.openapi_server import json_answer, operation, server_paths
from streaming.transports.openapi_sessions import SESSION, SESSION_ID, session_paths
from streaming.transports.openapi_webhooks import webhooks

API_VERSION = "0.1.0"


EVENT_ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID}
LAST_EVENT_ID_HEADER: Schema = {
    "name": "Last-Event-ID",
    "in": "header",
    "description": "The last event id the client saw (absent: 0, all).",
    "schema": EVENT_ID,
}
# A new stream may be refused for these (admission, or a failure while it opens).
OPENING = (Refusal.CLIENT_AT_LIMIT, Refusal.AT_LIMIT, Refusal.SHUTTING_DOWN, Refusal.CANNOT_OPEN)


def _stream_post(
    mode: AuthMode,
    operation_id: str,
    model: type[BaseModel],
    summary: str,
    events: str,
    *more: Refusal,
) -> Schema:
    content = {"application/json": {"schema": ref(model.__name__)}}
    return operation(
        operation_id,
        "streams",
        summary,
        **guarded(mode),
        requestBody={"required": True, "content": content},
        responses={
            "200": event_stream("The stream.", ref(events), links=True),
            **refusals(*access_refusals(mode, unsafe=True), *body_refusals(), *more, *OPENING),
        },
    )


def _paths(mode: AuthMode) -> dict[str, Schema]:
    reader = access_refusals(mode)
    writer = access_refusals(mode, unsafe=True)
    chat = _stream_post(
        mode,
        "chatStream",
        ChatRequest,
        "Run deer-flow's research workflow and stream its events",
        "ChatEvent",
        Refusal.MCP_DISABLED,
        Refusal.THREAD_BUSY,
        Refusal.THREAD_NOT_FREED,
        Refusal.WEBHOOK_NOT_ALLOWED,
    )
    chat["requestBody"] |= {
        "description": "Unknown fields are ignored; an empty body is refused (422), as "
        "FastAPI refuses it; send `{}` for every default. A "
        "non-empty `mcp_settings` gets 403 unless the server enables MCP "
        "(ENABLE_MCP_SERVER_CONFIGURATION). One run per thread: when `thread_id` has a live "
        "run, `multitask_strategy` (default STREAM_MULTITASK_STRATEGY) interrupts it (503 if "
        "it does not stop in time), refuses this request (409, naming it), or queues this one.",
    }
    return {
        "/api/chat/stream": {"post": chat},
        "/api/prose/generate": {
            "post": _stream_post(
                mode,
                "proseGenerate",
                ProseRequest,
                "Stream the prose writer's text",
                "ProseEvent",
                Refusal.WEBHOOK_NOT_ALLOWED,
            )
        },
        **session_paths(mode),
        "/api/sessions/{session_id}/stream": {
            "parameters": [SESSION_ID],
            "get": operation(
                "resumeSession",
                "sessions",
                "Replay a session's events after an id, then follow it live",
                **guarded(mode),
                parameters=[
                    LAST_EVENT_ID_HEADER,
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
                    **refusals(
                        *reader, *SESSION, Refusal.NOT_KEPT, expired(), Refusal.BAD_EVENT_ID
                    ),
                },
            ),
        },
        "/api/sessions/{session_id}/observer-link": {
            "parameters": [SESSION_ID],
            "post": operation(
                "createObserverLink",
                "sessions",
                "A signed, expiring, read-only link to the session's stream",
                description="For a plain `EventSource`: the link is its own credential. It "
                "streams as `/stream` does and can never cancel.",
                **guarded(mode),
                responses={
                    "200": json_answer("The link.", ObserverLink),
                    **refusals(*writer, *SESSION),
                },
            ),
        },
        "/api/sessions/{session_id}/observe": {
            "parameters": [SESSION_ID],
            "get": operation(
                "observeSession",
                "sessions",
                "Follow a session's stream through an observer link",
                parameters=[
                    {
                        "name": "link",
                        "in": "query",
                        "required": True,
                        "description": "The signed link, as `observer-link` made it.",
                        "schema": {"type": "string"},
                    },
                    LAST_EVENT_ID_HEADER,
                ],
                responses={
                    "200": event_stream(
                        "The events after that id, then live ones.",
                        {"anyOf": [ref("ChatEvent"), ref("ProseEvent")]},
                        links=False,
                    ),
                    **refusals(
                        Refusal.LINK_INVALID,
                        Refusal.LINK_EXPIRED,
                        Refusal.NOT_FOUND,
                        Refusal.NOT_KEPT,
                        Refusal.BAD_EVENT_ID,
                    ),
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


RESPONSE_MODELS = (
    SessionRecord,
    ThreadSessions,
    CancelAccepted,
    ObserverLink,
    Config,
    Health,
    Ready,
    ErrorBody,
    ThreadBusy,
)


def openapi_document(mode: AuthMode | None = None) -> dict[str, Any]:
    """Return the document of the API as STREAM_AUTH (or `mode`) makes it: its security
    schemes, the requirements and the refusals of access are the mode's; the `webhook`
    field takes the hosts of STREAM_WEBHOOK_ALLOWED_HOSTS."""
    return _document(mode or conf.access_mode, conf.webhook_allowed_hosts)


@cache
def _document(mode: AuthMode, webhook_hosts: frozenset[str]) -> dict[str, Any]:
    """Return the OpenAPI document of `mode` (built once; callers must not change it)."""
    schemas = merged(model_schemas(*RESPONSE_MODELS, mode="serialization").items(), into={})
    merged(request_schemas(webhook_hosts).items(), into=schemas)
    merged(EVENT_SCHEMAS.items(), into=schemas)
    components: dict[str, Any] = {"schemas": schemas}
    if schemes := security_schemes(mode):
        components["securitySchemes"] = schemes
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deer-flow streaming server (Django)",
            "version": API_VERSION,
            "description": "deer-flow's chat and prose streams, and their sessions. The "
            "schemas say what clients send; like deer-flow (FastAPI), the server also takes "
            'what pydantic\'s lax mode converts, such as `"true"` for `true`. Access: '
            f"STREAM_AUTH={mode}.",
        },
        "paths": _paths(mode),
        "webhooks": webhooks(),
        "components": components,
    }


class OpenAPIView(ApiView):
    """`GET /api/openapi.json`: the OpenAPI document of this server's mode, no token needed."""

    async def get(self, request: HttpRequest) -> JsonResponse:
        """Return the document."""
        return JsonResponse(openapi_document())
