"""The table of endings, and what is derived from it."""

from __future__ import annotations

from streaming.admin.sessions import CancelledReasonFilter
from streaming.models import CancelledSession
from streaming.runs.endings import (
    ENDINGS,
    FRAME_REASONS,
    STOPPED_REASONS,
    STOPPED_STATUSES,
    EndReason,
    Status,
)


def test_every_reason_has_one_row() -> None:
    assert set(ENDINGS) == set(EndReason)


def test_the_row_status_of_each_reason() -> None:
    assert {reason: reason.status for reason in EndReason} == {
        EndReason.NONE: Status.COMPLETED,
        EndReason.USER_CANCEL: Status.CANCELLED,
        EndReason.SUPERSEDED: Status.CANCELLED,
        EndReason.CLIENT_DISCONNECT: Status.CANCELLED,
        EndReason.SLOW_CLIENT: Status.CANCELLED,
        EndReason.TIMEOUT: Status.TIMED_OUT,
        EndReason.ERROR: Status.FAILED,
        EndReason.STALLED: Status.FAILED,
        EndReason.SERVER_SHUTDOWN: Status.INTERRUPTED,
        EndReason.WORKER_LOST: Status.INTERRUPTED,
    }


def test_final_frames_go_only_where_someone_listens() -> None:
    with_frame = {reason for reason, ending in ENDINGS.items() if ending.frame}
    assert with_frame == {
        EndReason.USER_CANCEL,
        EndReason.SUPERSEDED,
        EndReason.TIMEOUT,
        EndReason.ERROR,
        EndReason.STALLED,
        EndReason.SERVER_SHUTDOWN,
    }
    assert sorted(FRAME_REASONS) == [
        "cancelled",
        "error",
        "shutdown",
        "stalled",
        "superseded",
        "timeout",
    ]
    assert not any(ENDINGS[r].frame for r in (EndReason.CLIENT_DISCONNECT, EndReason.SLOW_CLIENT))


def test_the_cancelled_sessions_view_is_derived_from_the_table() -> None:
    assert STOPPED_REASONS == (
        EndReason.USER_CANCEL,
        EndReason.SUPERSEDED,
        EndReason.CLIENT_DISCONNECT,
        EndReason.SLOW_CLIENT,
        EndReason.TIMEOUT,
        EndReason.SERVER_SHUTDOWN,
        EndReason.WORKER_LOST,
    )
    assert set(STOPPED_STATUSES) == {Status.CANCELLED, Status.TIMED_OUT, Status.INTERRUPTED}
    lookups = CancelledReasonFilter(None, {}, CancelledSession, None).lookups(None, None)  # type: ignore[arg-type]
    assert [value for value, _ in lookups] == [reason.value for reason in STOPPED_REASONS]
    assert all(ENDINGS[reason].colour for reason in STOPPED_REASONS)
