"""Read and validate request bodies and WebSocket messages; refuse what cannot run."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from pydantic import BaseModel, ValidationError

from streaming.api.errors import ApiError, Refusal
from streaming.conf import conf

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# PostgreSQL cannot store U+0000 in text or jsonb, so a request whose fields carry one is
# refused (on every database alike) rather than failing when its session is recorded.
NUL_FREE_TEXT = "^[^\\u0000]*$"  # the rule as a JSON Schema pattern, for the OpenAPI document
NUL_MESSAGE = "Text must not contain the NUL character (U+0000)."
# Free-form fields (`mcp_settings`) nest at most this deep: pydantic cannot serialise much
# deeper values into the session's record (about 255 levels), and no real settings need it.
MAX_DEPTH = 64
DEPTH_MESSAGE = f"Value nests deeper than {MAX_DEPTH} levels."


@dataclass(frozen=True, slots=True)
class Wording:
    """How a transport names what it refuses (HTTP: a request body; WebSocket: a message)."""

    noun: str
    explain_json: bool  # name the JSON parser's complaint
    not_object: Any  # the detail for valid JSON that is not an object


BODY = Wording(
    "Request body",
    explain_json=True,
    not_object=[{"type": "model_type", "loc": ["body"], "msg": "Input should be a JSON object"}],
)
MESSAGE = Wording("Message", explain_json=False, not_object="Message must be a JSON object.")
# An empty body, refused as FastAPI refuses a missing body.
MISSING_BODY = [{"type": "missing", "loc": ["body"], "msg": "Field required"}]


def too_large(wording: Wording) -> ApiError:
    """Return the refusal of a body or message over STREAM_MAX_BODY_BYTES (413)."""
    return ApiError(413, f"{wording.noun} is larger than {conf.max_body_bytes} bytes.")


def parse_json_object(raw: bytes | str, wording: Wording) -> dict[str, Any]:
    """Return `raw` parsed as a JSON object, or raise ApiError: 413, 400 or 422.

    The one rule of both transports: at most STREAM_MAX_BODY_BYTES, valid JSON (nested no
    deeper than the parser allows), an object.
    """
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    if size > conf.max_body_bytes:
        raise too_large(wording)
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f": {exc}" if wording.explain_json else "."
        raise ApiError(400, f"{wording.noun} is not valid JSON{reason}") from None
    except RecursionError:
        reason = ": nested too deeply." if wording.explain_json else "."
        raise ApiError(400, f"{wording.noun} is not valid JSON{reason}") from None
    if not isinstance(payload, dict):
        raise ApiError(422, wording.not_object)
    return payload


def is_json(content_type: str) -> bool:
    """Return whether a `Content-Type` value names JSON: `application/json` or `*/*+json`."""
    media_type = content_type.partition(";")[0].strip().lower()
    kind, slash, subtype = media_type.partition("/")
    return bool(kind and slash) and (media_type == "application/json" or subtype.endswith("+json"))


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """Return an HTTP request's body parsed as a JSON object (see `parse_json_object`).

    Only a JSON content type is read (415 otherwise): the types a page on another site can
    send without a CORS preflight (`text/plain`, forms, none) never start a stream.
    """
    if not is_json(request.headers.get("Content-Type", "")):
        raise Refusal.UNSUPPORTED_MEDIA_TYPE.error()
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > conf.max_body_bytes:
        raise too_large(BODY)
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large(BODY) from None
    if not body:
        raise ApiError(422, MISSING_BODY)
    return parse_json_object(body, BODY)


def validate(schema: type[SchemaT], payload: dict[str, Any]) -> SchemaT:
    """Return `payload` validated by `schema`, or raise 422 with pydantic's errors."""
    try:
        model = schema.model_validate(payload)
    except ValidationError as exc:
        errors = [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise ApiError(422, errors) from None
    if errors := _unstorable(model):
        raise ApiError(422, [{**error, "loc": ["body", *error["loc"]]} for error in errors])
    return model


def _unstorable(model: BaseModel) -> list[dict[str, Any]]:
    """Return what the session's record could not store: U+0000 in text, too deep a value."""
    found: list[dict[str, Any]] = []
    # Iterative: `mcp_settings` may nest as deep as the JSON parser allows.
    queue: deque[tuple[list[Any], Any]] = deque([([], model)])
    while queue:
        loc, value = queue.popleft()
        if len(loc) > MAX_DEPTH:
            return [{"type": "too_deep", "loc": loc[:MAX_DEPTH], "msg": DEPTH_MESSAGE}]
        if isinstance(value, BaseModel):
            queue.extend(([*loc, name], getattr(value, name)) for name in type(value).model_fields)
        elif isinstance(value, str):
            if "\x00" in value:
                found.append({"type": "string_nul", "loc": loc, "msg": NUL_MESSAGE})
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in str(key):
                    found.append({"type": "string_nul", "loc": [*loc, key], "msg": NUL_MESSAGE})
                queue.append(([*loc, key], item))
        elif isinstance(value, list):
            queue.extend(([*loc, index], item) for index, item in enumerate(value))
    return found
