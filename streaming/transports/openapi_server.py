"""The OpenAPI document's server endpoints: health, readiness, metrics, the document, the page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streaming.api.errors import Refusal
from streaming.api.responses import Health, Ready
from streaming.transports.openapi_events import Schema, ref
from streaming.transports.openapi_refusals import refusals


def operation(operation_id: str, tag: str, summary: str, **fields: Any) -> Schema:
    """Return one operation of the document."""
    return {"operationId": operation_id, "tags": [tag], "summary": summary, **fields}


def json_answer(description: str, model: type[BaseModel]) -> Schema:
    """Return a JSON answer serialised through `model`."""
    schema = ref(model.__name__)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str, media_type: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def server_paths() -> dict[str, Schema]:
    """Return the paths of the endpoints beside the API."""
    return {
        "/healthz": {
            "get": operation(
                "health",
                "server",
                "Whether the database and the channel layer answer",
                responses={
                    "200": json_answer("Both answer.", Health),
                    "503": json_answer("One does not.", Health),
                },
            )
        },
        "/readyz": {
            "get": operation(
                "ready",
                "server",
                "Whether this worker takes new streams (not once its shutdown has begun)",
                responses={
                    "200": json_answer("It does.", Ready),
                    "503": json_answer("It is shutting down; with `Retry-After`.", Ready),
                },
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "server",
                "Prometheus metrics (a bearer token when the server sets STREAM_METRICS_TOKEN)",
                responses={
                    "200": _text("Prometheus' text format 0.0.4.", "text/plain"),
                    **refusals(Refusal.BAD_TOKEN),
                },
            )
        },
        "/api/openapi.json": {
            "get": operation(
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
            "get": operation(
                "index",
                "client",
                "The web client",
                responses={"200": _text("The page.", "text/html")},
            )
        },
    }
