"""The schemas of the OpenAPI document: the request and response models', with the rules
the views add to pydantic's (no NUL in free text, `zap` needs a command)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from streaming.api.bodies import NUL_FREE_TEXT
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.transports.openapi_events import Schema

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


def request_schemas() -> dict[str, Schema]:
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
