"""Read and validate request bodies; refuse what cannot run with FastAPI's error shape."""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, ValidationError

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


logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request refused before anything streams: an HTTP status and a JSON `detail`."""

    def __init__(self, status: int, detail: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        """Return the answer a client gets: `{"detail": ...}` with the status."""
        response = JsonResponse({"detail": self.detail}, status=self.status, headers=self.headers)
        if self.status >= 500:
            # A refusal the server chose (at its limit, restarting, or a dependency failing,
            # which is logged where it failed): a warning, not an error for Django to log.
            logger.warning("Refused with %d: %s", self.status, self.detail)
            response._has_been_logged = True  # type: ignore[attr-defined]
        return response


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """Return the body parsed as a JSON object, or raise the contract's 413/400/422."""
    limit = conf.max_body_bytes
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, f"Request body is larger than {limit} bytes.") from None
    if len(body) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes.")
    try:
        payload = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "Request body is not valid JSON: nested too deeply.") from None
    if not isinstance(payload, dict):
        raise ApiError(
            422,
            [{"type": "model_type", "loc": ["body"], "msg": "Input should be a JSON object"}],
        )
    return payload


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
