"""How a stream ends: the one table every rule about endings is read from.

Each `EndReason` has one row in `ENDINGS`: the status its session row ends in, the final
`error` frame its readers get (if any), whether its `events_sent` counts only what reached
the client, and its colour in the admin's cancelled-sessions view (reasons without one are
not shown there). The row status, the final frame, the web client's and the admin's labels,
the admin's colours and filter, and the cancelled-sessions set are all derived from it.
Adding a reason is one member below and its row in `ENDINGS` (and the migration Django
writes for the new choice).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Status(models.TextChoices):
    """Where a session is in its life."""

    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled"
    TIMED_OUT = "timed_out", "timed out"
    FAILED = "failed", "failed"
    INTERRUPTED = "interrupted", "interrupted"


class EndReason(models.TextChoices):
    """Why a session ended (empty: it completed)."""

    NONE = "", "none"
    CLIENT_DISCONNECT = "client_disconnect", "client disconnected"
    SLOW_CLIENT = "slow_client", "client stopped reading"
    USER_CANCEL = "user_cancel", "cancelled by a user"
    SUPERSEDED = "superseded", "superseded by a newer run"
    TIMEOUT = "timeout", "deadline passed"
    ERROR = "error", "the source failed"
    STALLED = "stalled", "the source went silent"
    SERVER_SHUTDOWN = "server_shutdown", "server shut down"
    WORKER_LOST = "worker_lost", "worker lost"

    @property
    def ending(self) -> Ending:
        """Return this reason's row of the table."""
        return ENDINGS[self]

    @property
    def status(self) -> Status:
        """Return the final status this reason ends a session in."""
        return ENDINGS[self].status


@dataclass(frozen=True, slots=True)
class FinalFrame:
    """The `error` event a stream ends with: `{"error": message, "reason": reason}`."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Ending:
    """What one way of ending means for the row, the readers and the admin."""

    status: Status
    frame: FinalFrame | None = None  # None: nobody listens, or the source's last event ends it
    reader_gone: bool = False  # events_sent counts what reached the client, not what was made
    colour: str | None = None  # shown in the cancelled-sessions view, in this colour


ENDINGS: dict[EndReason, Ending] = {
    EndReason.NONE: Ending(Status.COMPLETED),
    EndReason.USER_CANCEL: Ending(
        Status.CANCELLED,
        FinalFrame("cancelled", "The stream was cancelled."),
        colour="#d97706",
    ),
    EndReason.SUPERSEDED: Ending(
        Status.CANCELLED,
        FinalFrame("superseded", "A newer request on this thread replaced this stream."),
        colour="#2563eb",
    ),
    EndReason.CLIENT_DISCONNECT: Ending(Status.CANCELLED, reader_gone=True, colour="#64748b"),
    EndReason.SLOW_CLIENT: Ending(Status.CANCELLED, reader_gone=True, colour="#be185d"),
    EndReason.TIMEOUT: Ending(
        Status.TIMED_OUT,
        FinalFrame("timeout", "The stream took longer than the server allows."),
        colour="#dc2626",
    ),
    EndReason.ERROR: Ending(
        Status.FAILED, FinalFrame("error", "The stream failed because of an internal error.")
    ),
    EndReason.STALLED: Ending(
        Status.FAILED,
        FinalFrame("stalled", "The stream stopped: its source sent nothing for too long."),
    ),
    EndReason.SERVER_SHUTDOWN: Ending(
        Status.INTERRUPTED,
        FinalFrame("shutdown", "The server is restarting; the stream stopped."),
        colour="#7c3aed",
    ),
    EndReason.WORKER_LOST: Ending(Status.INTERRUPTED, colour="#0e7490"),
}

if set(ENDINGS) != set(EndReason):  # pragma: no cover - caught at import, by every test
    raise RuntimeError(f"ENDINGS lacks {sorted(set(EndReason) - set(ENDINGS))}")

# A session in one of these has not ended: it waits for its thread, or it runs.
LIVE_STATUSES: tuple[Status, ...] = (Status.QUEUED, Status.RUNNING)

# The cancelled-sessions view: the reasons with a colour, in the table's order (the
# order of its counts, chart and filter).
STOPPED_REASONS: tuple[EndReason, ...] = tuple(r for r, e in ENDINGS.items() if e.colour)
STOPPED_STATUSES: tuple[Status, ...] = tuple(
    dict.fromkeys(ENDINGS[reason].status for reason in STOPPED_REASONS)
)
# The public reasons a final frame can carry.
FRAME_REASONS: tuple[str, ...] = tuple(e.frame.reason for e in ENDINGS.values() if e.frame)
