"""The completion webhook in the OpenAPI document (3.1's `webhooks`): what receivers get."""

from __future__ import annotations

from streaming.api.responses import SessionRecord
from streaming.transports.openapi_events import Schema, ref


def _header(name: str, description: str, pattern: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


def webhooks() -> dict[str, Schema]:
    """Return the document's `webhooks`: the POST a run's end sends."""
    description = (
        "When a run ends (completed, failed, cancelled, timed out or interrupted), its "
        "final record (as `GET /api/sessions/{session_id}` answers it) is POSTed to the "
        "request's `webhook` URL, else to STREAM_WEBHOOK_URL; signed per the Standard "
        "Webhooks spec with STREAM_WEBHOOK_SECRET. Network errors, timeouts, 429 and 5xx "
        "are retried with backoff (the same `webhook-id`, a new timestamp and signature); "
        "any other answer is final. Sessions the stale-session sweep ends get none."
    )
    return {
        "streamEnded": {
            "post": {
                "operationId": "streamEnded",
                "tags": ["webhooks"],
                "summary": "A run ended: its session's final record, signed",
                "description": description,
                "parameters": [
                    _header(
                        "webhook-id",
                        "The session's id: the same on every attempt, to deduplicate by.",
                        "^[0-9a-f-]{36}$",
                    ),
                    _header(
                        "webhook-timestamp",
                        "When this attempt was signed, in Unix seconds.",
                        "^[0-9]+$",
                    ),
                    _header(
                        "webhook-signature",
                        "`v1,` and the base64 HMAC-SHA256, keyed by the secret's bytes, of "
                        "`{webhook-id}.{webhook-timestamp}.{body}`.",
                        "^v1,[A-Za-z0-9+/=]+$",
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(SessionRecord.__name__)}},
                },
                "responses": {
                    "2XX": {"description": "Received: no more attempts."},
                    "default": {
                        "description": "429 or 5xx: tried again later; any other: given up."
                    },
                },
            }
        }
    }
