"""The HTTP transport: SSE stream views and the small JSON endpoints beside them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from streaming import records
from streaming.api.access import Caller, authenticate, require_session
from streaming.api.bodies import read_json_object, validate
from streaming.api.clients import ClientInfo
from streaming.api.errors import ApiError, Refusal
from streaming.api.event_ids import parse_event_id
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.api.responses import Check, Config, Health, Ready
from streaming.conf import conf
from streaming.models import Transport
from streaming.runs import shutdown
from streaming.runs.opening import open_chat_stream, open_prose_stream, open_resume
from streaming.runs.readers import Followable
from streaming.runs.registry import live_runs
from streaming.runs.run import StreamRun
from streaming.sources import chat_source
from streaming.transports import sse
from streaming.transports.handoff import handoff_of
from streaming.transports.pump import tags_of

logger = logging.getLogger(__name__)


class EventStreamResponse(StreamingHttpResponse):
    """Stream a run's (or a kept log's) frames as Server-Sent Events.

    Served through `transports.handoff` (as `project.asgi` serves it), the body is sent after
    Django's handler has finished; elsewhere Django's handler streams it. Build it with
    `open()`, which attaches the reader before the headers go out.
    """

    def __init__(self, body: AsyncGenerator[bytes, None], *, session_id: uuid.UUID) -> None:
        self._body = body
        super().__init__(body, headers=sse.stream_headers(str(session_id)))

    @classmethod
    async def open(
        cls, stream: Followable, request: HttpRequest, *, session_id: uuid.UUID, after: int = 0
    ) -> EventStreamResponse:
        """Return the response for `stream` after event `after`, its reader attached.

        The body's first chunk is read here: the reader then holds its place and counts as
        one of the run's readers before the client can act on the headers (another reader
        that leaves meanwhile does not stop the run).
        """
        tags = tags_of(stream, session_id)
        body = sse.event_stream(stream, tags=tags, after=after)
        handoff = handoff_of(getattr(request, "scope", None))
        if handoff is None:
            return cls(body, session_id=session_id)
        left = stream.client_left if isinstance(stream, StreamRun) else None
        first = await anext(body)
        handoff.take(body, first=first, session_id=session_id, tags=tags, client_left=left)
        return cls(_nothing(), session_id=session_id)

    def __aiter__(self) -> AsyncIterator[bytes]:
        # Django's ASGI handler closes what `aiter(response)` returns when the client goes
        # away; its default wraps our iterator in generators that it never closes. Hand it
        # ours, so the guard's cleanup runs at once instead of at garbage collection.
        return self._body


async def _nothing() -> AsyncGenerator[bytes, None]:
    return
    yield  # An async generator that yields nothing.


class ApiView(View):
    """A JSON endpoint: every refusal, a method it does not serve included, is `{"detail"}`."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        """Return the view, exempt from CSRF checks (the API takes tokens, never cookies).

        Django's check would answer an unsafe method with an HTML 403 before the view can.
        """
        return csrf_exempt(super().as_view(**initkwargs))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Answer 405 as FastAPI does, with the methods this endpoint serves."""
        served = [method.upper() for method in self.http_method_names if hasattr(self, method)]
        allow = {"Allow": ", ".join(served)}
        response = Refusal.METHOD_NOT_ALLOWED.error(allow).response()
        if not self.view_is_async:
            return response

        async def answer() -> HttpResponse:
            return response

        return answer()


class ApiNotFoundView(ApiView):
    """Any other path under `/api/` (a malformed session id too): 404, whatever the method."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer 404 in the API's shape."""
        return Refusal.NOT_FOUND.error().response()


def _client(request: HttpRequest, caller: Caller) -> ClientInfo:
    """Return who sent the request, read from its ASGI scope as the WebSocket reads it."""
    if not isinstance(request, ASGIRequest):  # pragma: no cover - this app serves ASGI only
        raise TypeError("the streaming views run under ASGI")
    return ClientInfo.from_scope(request.scope, user_id=caller.user_id)


class StreamStartView(ApiView):
    """A `POST` that starts a stream: check the caller, validate, record the session, stream."""

    http_method_names = ["post", "options"]
    schema: type[ChatRequest] | type[ProseRequest]
    opens: Callable[..., Awaitable[StreamRun]]  # opening.py's opener for `schema`

    async def post(self, request: HttpRequest) -> HttpResponseBase:
        """Validate the request, record the session, stream its events."""
        try:
            caller = await authenticate(request)
            body = validate(self.schema, read_json_object(request))
            client = _client(request, caller)
            run = await self.opens(body, transport=Transport.SSE, client=client)
        except ApiError as exc:
            return exc.response()
        return await EventStreamResponse.open(run, request, session_id=run.session_id)


class ChatStreamView(StreamStartView):
    """`POST /api/chat/stream`: the workflow stream of deer-flow's chat."""

    schema = ChatRequest
    opens = staticmethod(open_chat_stream)


class ProseStreamView(StreamStartView):
    """`POST /api/prose/generate`: the prose writer's stream."""

    schema = ProseRequest
    opens = staticmethod(open_prose_stream)


class ConfigView(ApiView):
    """`GET /api/config`: the server's configuration in deer-flow's shape."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        """Return the RAG provider and the models the chat source offers."""
        return Config.offered_by(chat_source(conf.chat_source)).response()


class SessionStreamView(ApiView):
    """`GET /api/sessions/<uuid>/stream`: replay after `Last-Event-ID`, then follow live."""

    async def get(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponseBase:
        """Stream the session's events after the id the client last saw."""
        try:
            caller = await authenticate(request)
            after = last_event_id(request)
            await require_session(caller, session_id)
            stream = await open_resume(session_id, after=after)
        except ApiError as exc:
            return exc.response()
        return await EventStreamResponse.open(stream, request, session_id=session_id, after=after)


def last_event_id(request: HttpRequest) -> int:
    """Return `Last-Event-ID` (or `?last_event_id=` for EventSource), 0 when absent."""
    return parse_event_id(
        request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0"
    )


class HealthView(ApiView):
    """`GET /healthz`: 200 when the database and the channel layer answer, else 503."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        """Check the database and the channel layer."""
        database = await _check(records.ping_database)
        channel_layer = await _check(_ping_layer)
        healthy = database == channel_layer == "ok"
        health = Health(
            status="ok" if healthy else "error",
            database=database,
            channel_layer=channel_layer,
            live_streams=len(live_runs().runs),
            tasks=len(asyncio.all_tasks()),
        )
        return health.response(status=200 if healthy else 503)


class ReadyView(ApiView):
    """`GET /readyz`: 200 while this worker takes new streams, 503 once shutdown begins."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        """Answer whether a load balancer should send this worker new streams."""
        if shutdown.in_progress():
            retry = {"Retry-After": str(conf.retry_after_seconds)}
            return Ready(status="shutting_down").response(status=503, headers=retry)
        return Ready(status="ready").response()


async def _check(probe: Any) -> Check:
    try:
        await probe()
    except Exception as exc:
        logger.warning("Health check %s failed: %s", probe.__name__, exc)
        return "error"
    return "ok"


async def _ping_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    await layer.group_send("healthz", {"type": "healthz.ping"})
