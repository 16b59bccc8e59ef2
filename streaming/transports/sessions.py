"""The sessions' JSON endpoints: one record, a thread's sessions, cancel (and wait for the end).

A running session's counts are read live (`runs/live_record.py`), never written per event.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse

from streaming.api.access import authenticate, require_session, session_for, thread_sessions_for
from streaming.api.errors import ApiError, Refusal
from streaming.api.params import parse_limit, parse_wait
from streaming.api.responses import CancelAccepted, SessionRecord, ThreadSessions
from streaming.models import StreamSession
from streaming.runs.cancel import CancelOutcome, request_cancel
from streaming.runs.endings import LIVE_STATUSES
from streaming.runs.live_record import live_progress, wait_final
from streaming.transports.http import ApiView


async def records_of(sessions: list[StreamSession]) -> list[SessionRecord]:
    """Return the records of `sessions`, the running ones with their live counts."""
    progress = await live_progress(sessions)
    found = []
    for session in sessions:
        record = SessionRecord.of(session)
        if (live := progress.get(session.id)) is not None:
            record = record.live(last_event_id=live.last_event_id, events_sent=live.events_sent)
        found.append(record)
    return found


class SessionDetailView(ApiView):
    """`GET /api/sessions/<uuid>`: one session's record (live counts while it runs)."""

    async def get(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
        """Return the session as JSON, or 404."""
        try:
            session = await session_for(await authenticate(request), session_id)
        except ApiError as exc:
            return exc.response()
        (record,) = await records_of([session])
        return record.response()


class ThreadSessionsView(ApiView):
    """`GET /api/threads/<thread_id>/sessions`: a thread's sessions, newest first."""

    async def get(self, request: HttpRequest, thread_id: str) -> HttpResponse:
        """Return the thread's sessions the caller may see (at most `?limit=`, default 20)."""
        try:
            caller = await authenticate(request)
            limit = parse_limit(request.GET.get("limit"))
        except ApiError as exc:
            return exc.response()
        sessions = await thread_sessions_for(caller, thread_id, limit=limit)
        return ThreadSessions(thread_id=thread_id, sessions=await records_of(sessions)).response()


class SessionCancelView(ApiView):
    """`POST /api/sessions/<uuid>/cancel[?wait=<seconds>]`: end a live stream, on whichever
    worker runs it; with `wait`, answer once its record is final."""

    http_method_names = ["post", "options"]

    async def post(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
        """Send the cancel: 202, or 404 for an unknown session, 409 for one that ended.

        With `wait`: 200 and the final record once the run has recorded its end, or 202 when
        `wait` seconds pass first.
        """
        try:
            caller = await authenticate(request)
            wait = parse_wait(request.GET.get("wait"))
            await require_session(caller, session_id)
            outcome = await request_cancel(session_id)
        except ApiError as exc:
            return exc.response()
        if outcome is CancelOutcome.NOT_FOUND:
            return Refusal.NO_SESSION.error().response()
        if outcome is CancelOutcome.ALREADY_ENDED:
            return Refusal.ALREADY_ENDED.error().response()
        if wait is not None:
            session = await wait_final(session_id, within=wait)
            if session is None:  # Deleted meanwhile (pruned).
                return Refusal.NO_SESSION.error().response()
            if session.status not in LIVE_STATUSES:
                return SessionRecord.of(session).response()
        return CancelAccepted(id=session_id).response(status=202)
