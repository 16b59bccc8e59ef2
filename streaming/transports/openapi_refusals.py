"""The error responses of the OpenAPI document: the table of refusals, and the body parser's.

Each operation lists the ways it refuses: rows of the table of refusals (their status,
text and headers), and what the body parser or the event log raise, whose texts depend on
what was sent (the examples are theirs, raised here once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic import BaseModel

from streaming.api.access import CHALLENGE
from streaming.api.bodies import BODY, MAX_DEPTH, MISSING_BODY, parse_json_object, too_large
from streaming.api.bodies import validate as validate_body
from streaming.api.errors import RETRY_AFTER, ApiError, Refusal
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.runs.eventlog import EventLogExpiredError
from streaming.transports.openapi_events import Schema, ref

RETRY: Schema = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


# The example session of a refusal that names one (a busy thread's live run).
EXAMPLE_SESSION = "00000000-0000-4000-8000-000000000001"


class Refused(NamedTuple):
    """One way an operation refuses: its status, what it means, an example `detail`."""

    status: int
    name: str
    description: str
    detail: Any
    headers: dict[str, Schema]
    extra: dict[str, Any] = {}  # the answer's fields beside `detail`, in the example
    schema: str = "ErrorBody"  # the answer's schema

    @classmethod
    def by(cls, refusal: Refusal) -> Refused:
        """Return a row of the table of refusals, with the headers it carries."""
        headers: dict[str, Schema] = {}
        if refusal in (Refusal.BAD_TOKEN, Refusal.SIGN_IN):
            headers = {
                name: {"description": "How to authenticate.", "schema": {"const": value}}
                for name, value in CHALLENGE.items()
            }
        if refusal.retry_later:
            headers[RETRY_AFTER] = RETRY
        row = cls(refusal.status, refusal.name.lower(), refusal.detail, refusal.detail, headers)
        if refusal is Refusal.THREAD_BUSY:
            row = row._replace(extra={"session_id": EXAMPLE_SESSION}, schema="ThreadBusy")
        return row


def _raised(refuse: Callable[[], object]) -> Any:
    """Return the `detail` of the ApiError that `refuse()` raises."""
    try:
        refuse()
    except ApiError as exc:
        return exc.detail
    raise AssertionError(f"{refuse} refused nothing")  # pragma: no cover


def body_refusals() -> list[Refused]:
    """Return how a stream endpoint refuses its body, with the parser's own examples."""
    invalid = (
        "The request is well-formed JSON but not valid: see `detail`. Text must not contain "
        f"U+0000 and values must not nest deeper than {MAX_DEPTH} levels (the session's "
        "record keeps them)."
    )

    def parsed(raw: bytes) -> Any:
        return _raised(lambda: parse_json_object(raw, BODY))

    def validated(model: type[BaseModel], payload: dict[str, Any]) -> Any:
        return _raised(lambda: validate_body(model, payload))

    too_big = "The body is larger than the server accepts."
    return [
        Refused(400, "not_json", "The body is not valid JSON.", parsed(b"{"), {}),
        Refused(413, "too_large", too_big, too_large(BODY).detail, {}),
        Refused.by(Refusal.UNSUPPORTED_MEDIA_TYPE),
        Refused(422, "missing", "The body is empty.", MISSING_BODY, {}),
        Refused(422, "not_an_object", invalid, parsed(b"[]"), {}),
        Refused(422, "invalid", invalid, validated(ProseRequest, {"option": "shout"}), {}),
        Refused(422, "nul", invalid, validated(ChatRequest, {"thread_id": "\0"}), {}),
    ]


def expired() -> Refused:
    """Return the 410 of a resume from events the log dropped, its state gone too (the
    log's own text)."""
    text = (EventLogExpiredError.__doc__ or "").rstrip(".")
    text += ", nor the run's merged state that would stand in for them (a snapshot)."
    return Refused(410, "expired", text, str(EventLogExpiredError(3, 16)), {})


def refusals(*rows: Refusal | Refused) -> dict[str, Schema]:
    """Return an operation's error responses: one per status, an example per refusal."""
    found = [row if isinstance(row, Refused) else Refused.by(row) for row in rows]
    statuses = sorted({row.status for row in found})
    return {str(code): _error([row for row in found if row.status == code]) for code in statuses}


def _error(rows: list[Refused]) -> Schema:
    """Return the response of refusals that share a status."""
    texts = list(dict.fromkeys(row.description for row in rows))
    schemas = [ref(name) for name in dict.fromkeys(row.schema for row in rows)]
    content = {
        "schema": schemas[0] if len(schemas) == 1 else {"anyOf": schemas},
        "examples": {row.name: {"value": {"detail": row.detail, **row.extra}} for row in rows},
    }
    response: Schema = {
        "description": texts[0] if len(texts) == 1 else "\n".join(f"- {t}" for t in texts),
        "content": {"application/json": content},
    }
    if headers := {name: header for row in rows for name, header in row.headers.items()}:
        response["headers"] = headers
    return response
