"""Housekeeping of session rows: end the ones whose worker died, delete old ones."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone

from streaming.conf import conf
from streaming.models import EndReason, Status, StreamSession
from streaming.runs.endings import LIVE_STATUSES

logger = logging.getLogger(__name__)

DEFAULT_PRUNE_DAYS = 30
DEFAULT_PRUNE_BATCH = 1000
FINAL_STATUSES = [status for status in Status if status not in LIVE_STATUSES]


def sweep_stale_sessions(*, stale_after: float | None = None) -> int:
    """Mark live rows without a recent heartbeat `interrupted/worker_lost`; return how many.

    Live workers refresh `heartbeat_at` of their running rows every
    STREAM_ROW_HEARTBEAT_SECONDS; a row older than STREAM_STALE_AFTER_SECONDS lost its
    worker. One UPDATE, guarded by a live status (queued or running): a stream that ends
    meanwhile keeps its own final state.
    """
    seconds = conf.stale_after_seconds if stale_after is None else stale_after
    now = timezone.now()
    swept = StreamSession.objects.filter(
        status__in=LIVE_STATUSES, heartbeat_at__lt=now - timedelta(seconds=seconds)
    ).update(
        status=EndReason.WORKER_LOST.status,
        end_reason=EndReason.WORKER_LOST,
        ended_at=now,
    )
    if swept:
        logger.warning("Marked %d stale session(s) interrupted (worker lost)", swept)
    return swept


def prune_sessions(*, days: int = DEFAULT_PRUNE_DAYS, batch_size: int = DEFAULT_PRUNE_BATCH) -> int:
    """Delete ended sessions started more than `days` ago, in batches; return how many."""
    cutoff = timezone.now() - timedelta(days=days)
    old = StreamSession.objects.filter(status__in=FINAL_STATUSES, started_at__lt=cutoff)
    deleted = 0
    while True:
        # Small batches keep each transaction (and its locks) short on a large table.
        ids = list(old.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        # Their webhook attempts go with them; only the sessions are counted.
        _, counts = StreamSession.objects.filter(pk__in=ids).delete()
        deleted += counts.get(StreamSession._meta.label, 0)


def run_every(seconds: float, task: Callable[[], object], *, stop: threading.Event) -> None:
    """Run `task` now and then every `seconds` until `stop` is set; a failed run is logged."""
    while not stop.is_set():
        # A long-lived process must not keep a connection the database has dropped.
        close_old_connections()
        try:
            task()
        except Exception:
            logger.exception("Housekeeping run failed; trying again in %.0f s", seconds)
        stop.wait(seconds)
