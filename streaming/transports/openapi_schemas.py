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


def request_schemas(webhook_hosts: frozenset[str]) -> dict[str, Schema]:
    """Return the request models' schemas with the rules the views add to pydantic's (a
    `webhook` names one of `webhook_hosts`, the server's allow-list)."""
    schemas = model_schemas(ChatRequest, ProseRequest, mode="validation")
    schemas["ProseRequest"] |= ZAP_NEEDS_COMMAND
    for name in ("ChatRequest", "ProseRequest"):
        schemas[name]["properties"]["webhook"] = webhook_schema(webhook_hosts)
    for schema in schemas.values():
        _forbid_nul(schema)
    return schemas


def webhook_schema(hosts: frozenset[str]) -> Schema:
    """Return the `webhook` field as this server takes it: null, or an http(s) URL whose
    host is allowed (no host allowed: null only)."""
    unset: Schema = {"type": "null"}
    if not hosts:
        return unset | {
            "description": "A URL that gets the session's final record when its run ends; "
            "this server takes none from requests (STREAM_WEBHOOK_ALLOWED_HOSTS is empty): "
            "any other value is refused with 422."
        }
    names = "|".join(_literal(host) for host in sorted(hosts))
    url: Schema = {
        "type": "string",
        "maxLength": 2048,
        "pattern": f"^https?://(?:{names})(?::[0-9]{{1,5}})?(?:[/?#][!-~]*)?$",
        "description": "An http(s) URL on an allowed host (STREAM_WEBHOOK_ALLOWED_HOSTS) "
        "that gets the session's final record, signed, when its run ends.",
    }
    return {"anyOf": [url, unset], "default": None}


def _literal(host: str) -> str:
    """Return `host` as a regular expression that matches it (IPv6 in its brackets)."""
    escaped = "".join(c if c.isalnum() or c in "-:" else "\\" + c for c in host)
    return f"\\[{escaped}\\]" if ":" in host else escaped


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
