"""The response models are what the views send, byte for byte, and what the document names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from streaming.api.responses import (
    Answer,
    CancelAccepted,
    Config,
    ErrorBody,
    Health,
    SessionRecord,
)
from streaming.models import EndReason, StreamSession
from streaming.transports.openapi import openapi_document
from tests.support.asgi import HttpExchange, request
from tests.support.rows import make_session

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = "00000000-0000-0000-0000-000000000004"


async def _session(reason: EndReason | None) -> StreamSession:
    return await sync_to_async(make_session)(reason=reason)


async def _answer(method: str, path: str, **kwargs: Any) -> tuple[HttpExchange, Any]:
    exchange = await request(method, path, **kwargs)
    return exchange, json.loads(await exchange.read_all())


def assert_sent_through(model: type[Answer], exchange: HttpExchange, body: Any) -> None:
    """Assert the answer has exactly the model's fields, in order, and is its serialisation."""
    assert list(body) == list(model.model_fields)
    assert model.model_validate(body).response().content == exchange.body


def assert_documented_as(model: type[Answer], path: str, method: str, status: int) -> None:
    """Assert the document gives the model's schema as this answer's."""
    response = openapi_document()["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}


@pytest.mark.parametrize("reason", [None, EndReason.USER_CANCEL])
async def test_the_session_record_is_a_SessionRecord(reason: EndReason | None) -> None:
    session = await _session(reason)
    exchange, body = await _answer("GET", f"/api/sessions/{session.id}")

    assert exchange.status == 200
    assert_sent_through(SessionRecord, exchange, body)
    assert exchange.body == SessionRecord.of(session).response().content
    # The timestamps as `isoformat()` has always written them, not pydantic's `Z`.
    assert body["started_at"] == session.started_at.isoformat()
    assert body["started_at"].endswith("+00:00")
    assert body["ended_at"] == (session.ended_at and session.ended_at.isoformat())
    assert (body["status"], body["end_reason"]) == (session.status, session.end_reason)
    assert_documented_as(SessionRecord, "/api/sessions/{session_id}", "get", 200)


async def test_the_cancel_answer_is_a_CancelAccepted() -> None:
    session = await _session(None)
    exchange, body = await _answer("POST", f"/api/sessions/{session.id}/cancel")

    assert exchange.status == 202
    assert body == {"id": str(session.id), "status": "cancelling"}
    assert_sent_through(CancelAccepted, exchange, body)
    assert_documented_as(CancelAccepted, "/api/sessions/{session_id}/cancel", "post", 202)


async def test_the_config_is_a_Config() -> None:
    exchange, body = await _answer("GET", "/api/config")

    assert exchange.status == 200
    assert body == {"rag": {"provider": None}, "models": {"basic": [], "reasoning": []}}
    assert_sent_through(Config, exchange, body)
    assert_documented_as(Config, "/api/config", "get", 200)


async def test_the_health_answer_is_a_Health() -> None:
    exchange, body = await _answer("GET", "/healthz")

    assert exchange.status == 200
    assert body["status"] == body["database"] == body["channel_layer"] == "ok"
    assert_sent_through(Health, exchange, body)
    assert_documented_as(Health, "/healthz", "get", 200)
    assert_documented_as(Health, "/healthz", "get", 503)


@pytest.mark.parametrize(
    ("method", "path", "raw", "documented"),
    [
        ("GET", f"/api/sessions/{UNKNOWN}", b"", "/api/sessions/{session_id}"),
        ("POST", "/api/prose/generate", b'{"option": "shout"}', "/api/prose/generate"),
        ("POST", "/api/chat/stream", b"{nope", "/api/chat/stream"),
    ],
)
async def test_every_refusal_is_an_ErrorBody(
    method: str, path: str, raw: bytes, documented: str
) -> None:
    headers = {"content-type": "application/json"} if raw else {}
    exchange, body = await _answer(method, path, body=raw, headers=headers)

    assert exchange.status >= 400
    assert_sent_through(ErrorBody, exchange, body)
    assert_documented_as(ErrorBody, documented, method.lower(), exchange.status)
