"""Observer links over HTTP: the owner makes one; anyone holding it may watch, never act."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from streaming.api.access import authenticate, session_for
from streaming.api.errors import ApiError
from streaming.api.observers import check_link, make_link
from streaming.api.responses import ObserverLink
from streaming.runs.opening import open_resume
from streaming.transports.http import ApiView, EventStreamResponse, last_event_id

# The query parameter that carries the signed link.
LINK = "link"


class ObserverLinkView(ApiView):
    """`POST /api/sessions/<uuid>/observer-link`: a signed, expiring, read-only link."""

    http_method_names = ["post", "options"]

    async def post(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
        """Return the link to the session's stream and when it expires (its owner only)."""
        try:
            await session_for(await authenticate(request), session_id)
        except ApiError as exc:
            return exc.response()
        token, expires_at = make_link(session_id)
        path = reverse("streaming:session-observe", args=[session_id])
        url = request.build_absolute_uri(f"{path}?{LINK}={token}")
        return ObserverLink(url=url, expires_at=expires_at).response()


class SessionObserveView(ApiView):
    """`GET /api/sessions/<uuid>/observe?link=…`: the stream, for whoever holds the link."""

    async def get(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponseBase:
        """Stream the session's events (after `Last-Event-ID`), as its owner would see them."""
        try:
            check_link(session_id, request.GET.get(LINK, ""))
            after = last_event_id(request)
            stream = await open_resume(session_id, after=after)
        except ApiError as exc:
            return exc.response()
        return await EventStreamResponse.open(stream, request, session_id=session_id, after=after)
