"""Session rows for tests, with the fields a test does not care about filled in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from streaming.models import EndReason, Kind, Status, StreamSession, Transport


def make_session(
    *,
    ago: timedelta = timedelta(minutes=5),
    reason: EndReason | None = EndReason.NONE,
    duration: timedelta = timedelta(seconds=12),
    **fields: Any,
) -> StreamSession:
    """Create a session started `ago` that ended for `reason` (None: still running)."""
    started: datetime = timezone.now() - ago
    values: dict[str, Any] = {
        "kind": Kind.CHAT,
        "transport": Transport.SSE,
        "thread_id": "thread-1",
        "started_at": started,
        "heartbeat_at": started,
        "events_sent": 7,
        "last_event_id": 7,
        "source": "demo",
    }
    if reason is None:
        values["status"] = Status.RUNNING
    else:
        values |= {
            "status": reason.status,
            "end_reason": reason,
            "ended_at": started + duration,
            "heartbeat_at": started + duration,
        }
    return StreamSession.objects.create(**(values | fields))
