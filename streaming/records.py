"""Reads and writes of session rows that the streams make."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection
from django.utils import timezone

from streaming.models import EndReason, Kind, Status, StreamSession, Transport

T = TypeVar("T")
P = ParamSpec("P")

# Django's ASGI handler gives every request its own thread for ORM calls, and so its own
# database connection: a few hundred live streams would hold a few hundred connections,
# and a run that outlives its request could not write at all. Every write of a stream's
# record goes through this one thread instead: one connection per process, reused.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-records")


def in_records_thread(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run `func` in the records thread, reconnecting once if the connection broke."""

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except DatabaseError:
            if connection.is_usable():
                raise
            connection.close()
            return func(*args, **kwargs)

    return sync_to_async(call, thread_sensitive=False, executor=_executor)


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


@in_records_thread
def open_session(
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
    session = StreamSession.objects.create(
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


@in_records_thread
def finish_session(
    session_id: uuid.UUID,
    *,
    reason: EndReason,
    events_sent: int,
    last_event_id: int,
    error: str = "",
) -> bool:
    """Record how a running stream ended; return False if it had already ended."""
    now = timezone.now()
    updated = StreamSession.objects.filter(pk=session_id, status=Status.RUNNING).update(
        status=reason.status,
        end_reason=reason,
        ended_at=now,
        heartbeat_at=now,
        events_sent=events_sent,
        last_event_id=last_event_id,
        error=error,
    )
    return updated == 1


@in_records_thread
def touch_sessions(session_ids: list[uuid.UUID]) -> int:
    """Mark the running rows of live streams as alive now."""
    if not session_ids:
        return 0
    return StreamSession.objects.filter(pk__in=session_ids, status=Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )


@in_records_thread
def get_session(session_id: uuid.UUID) -> StreamSession | None:
    """Return the session's row, or None."""
    return StreamSession.objects.filter(pk=session_id).first()


@in_records_thread
def ping_database() -> None:
    """Run a trivial query, raising if the database does not answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@in_records_thread
def close_connection() -> None:
    """Close the records thread's database connection (before the database goes away)."""
    connection.close()
