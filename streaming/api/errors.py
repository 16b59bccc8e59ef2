"""Refusals: a request that cannot run gets a status and a JSON `detail`, never a stream.

`Refusal` is the table of every fixed refusal the API gives (status, text, whether it
carries `Retry-After`); both transports raise them as `ApiError`, whose `detail` the
WebSocket sends as an `error` message and HTTP as FastAPI's `{"detail": …}` body.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from django.http import JsonResponse

from streaming.api.responses import ErrorBody
from streaming.conf import conf
from streaming.observe import metrics

logger = logging.getLogger(__name__)

RETRY_AFTER = "Retry-After"


class ApiError(Exception):
    """A request refused before anything streams: an HTTP status and a JSON `detail`."""

    def __init__(
        self,
        status: int,
        detail: Any,
        *,
        headers: dict[str, str] | None = None,
        body: ErrorBody | None = None,
    ) -> None:
        super().__init__(detail)
        metrics.REFUSALS.labels(str(status)).inc()
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.body = body  # the answer, where a refusal adds fields beside `detail`

    def extra(self) -> dict[str, Any]:
        """Return the fields of the answer beside `detail` (what a refusal adds to it)."""
        if self.body is None:
            return {}
        fields: dict[str, Any] = self.body.model_dump(mode="json")
        del fields["detail"]
        return fields

    def response(self) -> JsonResponse:
        """Return the answer a client gets: `{"detail": ...}` with the status."""
        body = self.body or ErrorBody(detail=self.detail)
        response = body.response(status=self.status, headers=self.headers)
        if self.status >= 500:
            # A refusal the server chose (at its limit, restarting, or a dependency failing,
            # which is logged where it failed): a warning, not an error for Django to log.
            logger.warning("Refused with %d: %s", self.status, self.detail)
            response._has_been_logged = True  # type: ignore[attr-defined]
        return response


class Refusal(enum.Enum):
    """Every fixed refusal: (status, detail, whether the client should retry later)."""

    NOT_FOUND = (404, "Not Found", False)
    METHOD_NOT_ALLOWED = (405, "Method Not Allowed", False)
    BAD_TOKEN = (401, "Missing or invalid API token.", False)
    SIGN_IN = (401, "Sign in, or send a personal API token.", False)
    CSRF_FAILED = (
        403,
        "CSRF check failed: a signed-in browser must send the X-CSRFToken header from this "
        "site's own pages.",
        False,
    )
    MCP_DISABLED = (
        403,
        "MCP server configuration is disabled. Set ENABLE_MCP_SERVER_CONFIGURATION=true "
        "to enable MCP features.",
        False,
    )
    UNSUPPORTED_MEDIA_TYPE = (
        415,
        "Request body must be JSON: send it with Content-Type: application/json.",
        False,
    )
    NO_SESSION = (404, "No such session.", False)
    LINK_INVALID = (401, "This observer link is not valid.", False)
    LINK_EXPIRED = (410, "This observer link has expired.", False)
    ALREADY_ENDED = (409, "The session has already ended; nothing was changed.", False)
    THREAD_BUSY = (
        409,
        "This thread has a live run (`session_id`); wait for it to end, cancel it, or send "
        "multitask_strategy `interrupt` or `enqueue`.",
        False,
    )
    NOT_KEPT = (410, "The events of this session are no longer kept.", False)
    BAD_EVENT_ID = (422, "Last-Event-ID must be a non-negative integer.", False)
    BAD_LIMIT = (422, "limit must be an integer from 1 to 100.", False)
    BAD_WAIT = (422, "wait must be a number of seconds from 0 to 60.", False)
    WEBHOOK_NOT_ALLOWED = (
        422,
        "This server does not send webhooks to that host (STREAM_WEBHOOK_ALLOWED_HOSTS).",
        False,
    )
    CLIENT_AT_LIMIT = (429, "Too many live streams from this client; retry later.", True)
    AT_LIMIT = (503, "The server is at its limit of live streams; retry later.", True)
    SHUTTING_DOWN = (503, "The server is restarting; retry later.", True)
    CANNOT_OPEN = (503, "The server cannot open streams right now.", True)
    THREAD_NOT_FREED = (
        503,
        "The thread's live run did not stop in time to be replaced; retry later.",
        True,
    )

    @property
    def status(self) -> int:
        """The HTTP status."""
        return int(self.value[0])

    @property
    def detail(self) -> str:
        """The text clients get."""
        return str(self.value[1])

    @property
    def retry_later(self) -> bool:
        """Whether the answer carries `Retry-After`."""
        return bool(self.value[2])

    def error(
        self, headers: dict[str, str] | None = None, *, body: ErrorBody | None = None
    ) -> ApiError:
        """Return this refusal as an ApiError to raise (with `Retry-After` where it applies).

        `body` is the answer when the refusal carries fields beside its `detail`.
        """
        headers = dict(headers or {})
        if self.retry_later:
            headers[RETRY_AFTER] = str(conf.retry_after_seconds)
        return ApiError(self.status, self.detail, headers=headers, body=body)
