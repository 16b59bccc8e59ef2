"""The OpenAPI document's session records: one session, a thread's sessions, cancel (and wait)."""

from __future__ import annotations

from streaming.api.errors import Refusal
from streaming.api.params import DEFAULT_LIMIT, MAX_LIMIT, MAX_WAIT_SECONDS
from streaming.api.responses import CancelAccepted, SessionRecord, ThreadSessions
from streaming.conf import AuthMode
from streaming.transports.openapi_access import access_refusals, guarded
from streaming.transports.openapi_events import UUID, Schema
from streaming.transports.openapi_refusals import refusals
from streaming.transports.openapi_server import json_answer, operation

SESSION_ID: Schema = {"name": "session_id", "in": "path", "required": True, "schema": UUID}
# A session's endpoints; an id that is not a UUID is a path of no endpoint (`NOT_FOUND`).
SESSION = (Refusal.NO_SESSION, Refusal.NOT_FOUND)
LIVE = (
    "While a session runs, `events_sent` and `last_event_id` are its live counts (read from "
    "the run, or from Redis with several workers: the same from every worker), not the row's."
)


def session_paths(mode: AuthMode) -> dict[str, Schema]:
    """Return the paths of session records: read one, list a thread's, cancel one."""
    reader = access_refusals(mode)
    writer = access_refusals(mode, unsafe=True)
    return {
        "/api/sessions/{session_id}": {
            "parameters": [SESSION_ID],
            "get": operation(
                "getSession",
                "sessions",
                "One session's record",
                description=LIVE,
                **guarded(mode),
                responses={
                    "200": json_answer("The record.", SessionRecord),
                    **refusals(*reader, *SESSION),
                },
            ),
        },
        "/api/threads/{thread_id}/sessions": {
            "parameters": [
                {"name": "thread_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": operation(
                "listThreadSessions",
                "sessions",
                "A thread's sessions, newest first: find its live run to rejoin it",
                description=f"{LIVE} With STREAM_AUTH=users, only the caller's own sessions "
                "(all of them for staff allowed to manage every session).",
                **guarded(mode),
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "description": f"At most this many sessions (absent: {DEFAULT_LIMIT}).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    }
                ],
                responses={
                    "200": json_answer("The sessions.", ThreadSessions),
                    **refusals(*reader, Refusal.BAD_LIMIT),
                },
            ),
        },
        "/api/sessions/{session_id}/cancel": {
            "parameters": [SESSION_ID],
            "post": operation(
                "cancelSession",
                "sessions",
                "Cancel a live stream, on whichever worker runs it",
                description="The stream ends with an `error` event, reason `cancelled`. With "
                "`wait`, the answer comes once the session's record is final (200, the "
                "record), or 202 when `wait` seconds pass first.",
                **guarded(mode),
                parameters=[
                    {
                        "name": "wait",
                        "in": "query",
                        "description": "Seconds to wait for the final record (absent: none).",
                        "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
                    }
                ],
                responses={
                    "200": json_answer("With `wait`: the final record.", SessionRecord),
                    "202": json_answer(
                        "The cancel was sent (with `wait`: the record is not final yet).",
                        CancelAccepted,
                    ),
                    **refusals(*writer, *SESSION, Refusal.ALREADY_ENDED, Refusal.BAD_WAIT),
                },
            ),
        },
    }
