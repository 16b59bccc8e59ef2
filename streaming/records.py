"""Reads and writes of session rows that the streams make."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from django.utils import timezone

from streaming.models import EndReason, Kind, Status, StreamSession, Transport

T = TypeVar("T")


async def survive_cancel(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` to its end even if this task is cancelled meanwhile; then re-raise.

    A client that hangs up on reading the last event cancels whatever the stream awaits
    next; the final write must still land (design rule 2).
    """
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


async def open_session(
    *,
    kind: Kind,
    transport: Transport,
    thread_id: str,
    source: str,
    request_params: dict[str, Any],
    client_address: str | None,
    user_agent: str,
) -> uuid.UUID:
    """Create the `running` row of a new stream and return its id."""
    now = timezone.now()
    session = await StreamSession.objects.acreate(
        kind=kind,
        transport=transport,
        thread_id=thread_id,
        source=source,
        request_params=request_params,
        client_address=client_address,
        user_agent=user_agent[:512],
        started_at=now,
        heartbeat_at=now,
    )
    return session.id


async def finish_session(
    session_id: uuid.UUID,
    *,
    reason: EndReason,
    events_sent: int,
    last_event_id: int,
    error: str = "",
) -> bool:
    """Record how a running stream ended; return False if it had already ended."""
    now = timezone.now()
    updated = await StreamSession.objects.filter(pk=session_id, status=Status.RUNNING).aupdate(
        status=reason.status,
        end_reason=reason,
        ended_at=now,
        heartbeat_at=now,
        events_sent=events_sent,
        last_event_id=last_event_id,
        error=error,
    )
    return updated == 1


async def touch_sessions(session_ids: list[uuid.UUID]) -> int:
    """Mark the running rows of live streams as alive now."""
    if not session_ids:
        return 0
    return await StreamSession.objects.filter(pk__in=session_ids, status=Status.RUNNING).aupdate(
        heartbeat_at=timezone.now()
    )
