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
    SessionRecord,
)
from streaming.transports.http import ApiView
from streaming.transports.openapi_events import EVENT_SCHEMAS, UUID, Schema, event_stream, ref
from streaming.transports.openapi_refusals import body_refusals, expired, refusals
from streaming.transports.openapi_schemas import merged, model_schemas, request_schemas

API_VERSION = "0.1.0"


def _json(description: str, model: type[BaseModel]) -> Schema:
    """Return a JSON answer serialised through `model`."""
    schema = ref(model.__name__)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Which applies is STREAM_AUTH's choice: none (`open`), the shared token (`token`), a
# personal token or the session cookie (`users`).
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"cookieAuth": []}, {}]
# Who may call: the token, or a user (whose unsafe cookie requests need the CSRF header).
ACCESS = (Refusal.BAD_TOKEN, Refusal.SIGN_IN)
UNSAFE = (*ACCESS, Refusal.CSRF_FAILED)
SESSION_ID: Schema = {"name": "session_id", "in": "path", "required": True, "schema": UUID}
EVENT_ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID}
LAST_EVENT_ID_HEADER: Schema = {
    "name": "Last-Event-ID",
    "in": "header",
    "description": "The last event id the client saw (absent: 0, all).",
    "schema": EVENT_ID,
}
# A new stream may be refused for these (admission, or a failure while it opens).
OPENING = (Refusal.CLIENT_AT_LIMIT, Refusal.AT_LIMIT, Refusal.SHUTTING_DOWN, Refusal.CANNOT_OPEN)
# A session's endpoints; an id that is not a UUID is a path of no endpoint (`NOT_FOUND`).
SESSION = (*ACCESS, Refusal.NO_SESSION, Refusal.NOT_FOUND)


def _operation(operation_id: str, tag: str, summary: str, **fields: Any) -> Schema:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, **fields}


def _stream_post(
    operation_id: str, model: type[BaseModel], summary: str, events: str, *more: Refusal
) -> Schema:
    content = {"application/json": {"schema": ref(model.__name__)}}
    return _operation(
        operation_id,
        "streams",
        summary,
        security=SECURITY,
        requestBody={"required": True, "content": content},
        responses={
            "200": event_stream("The stream.", ref(events), links=True),
            **refusals(*UNSAFE, *body_refusals(), *more, *OPENING),
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
        "description": "Unknown fields are ignored; an empty body is refused (422), as "
        "FastAPI refuses it; send `{}` for every default. A "
        "non-empty `mcp_settings` gets 403 unless the server enables MCP "
        "(ENABLE_MCP_SERVER_CONFIGURATION).",
    }
    return {
        "/api/chat/stream": {"post": chat},
        "/api/prose/generate": {
            "post": _stream_post(
                "proseGenerate", ProseRequest, "Stream the prose writer's text", "ProseEvent"
            )
        },
        "/api/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": _operation(
                "getSession",
                "sessions",
                "One session's record",
                security=SECURITY,
                responses={"200": _json("The record.", SessionRecord), **refusals(*SESSION)},
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
                    "202": _json("The cancel was sent.", CancelAccepted),
                    **refusals(*SESSION, Refusal.CSRF_FAILED, Refusal.ALREADY_ENDED),
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
                    **refusals(*SESSION, Refusal.NOT_KEPT, expired(), Refusal.BAD_EVENT_ID),
                },
            ),
        },
        "/api/sessions/{session_id}/observer-link": {
            "parameters": [SESSION_ID],
            "post": _operation(
                "createObserverLink",
                "sessions",
                "A signed, expiring, read-only link to the session's stream",
                description="For a plain `EventSource`: the link is its own credential. It "
                "streams as `/stream` does and can never cancel.",
                security=SECURITY,
                responses={
                    "200": _json("The link.", ObserverLink),
                    **refusals(*SESSION, Refusal.CSRF_FAILED),
                },
            ),
        },
        "/api/sessions/{session_id}/observe": {
            "parameters": [SESSION_ID],
            "get": _operation(
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
            "get": _operation(
                "getConfig",
                "server",
                "The server's configuration in deer-flow's shape",
                responses={"200": _json("RAG provider and models.", Config)},
            )
        },
        "/healthz": {
            "get": _operation(
                "health",
                "server",
                "Whether the database and the channel layer answer",
                responses={
                    "200": _json("Both answer.", Health),
                    "503": _json("One does not.", Health),
                },
            )
        },
        "/api/openapi.json": {
            "get": _operation(
                "openapi",
                "server",
                "This document",
                responses={
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
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
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
    }


RESPONSE_MODELS = (SessionRecord, CancelAccepted, ObserverLink, Config, Health, ErrorBody)


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once; callers must not change it)."""
    schemas = merged(model_schemas(*RESPONSE_MODELS, mode="serialization").items(), into={})
    merged(request_schemas().items(), into=schemas)
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
                    "description": "STREAM_AUTH=token: the shared STREAM_API_TOKEN. "
                    "STREAM_AUTH=users: a personal API token (`manage.py create_api_token`, "
                    "or the admin). STREAM_AUTH=open: none.",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "sessionid",
                    "description": "STREAM_AUTH=users: Django's session cookie, from `/login/` "
                    "or the admin's login. Unsafe methods also need the `X-CSRFToken` header "
                    "(the `csrftoken` cookie's value) and a same-site `Origin`.",
                },
            },
        },
    }


class OpenAPIView(ApiView):
    """`GET /api/openapi.json`: the OpenAPI document, no token needed."""

    async def get(self, request: HttpRequest) -> JsonResponse:
        """Return the document."""
        return JsonResponse(openapi_document())
