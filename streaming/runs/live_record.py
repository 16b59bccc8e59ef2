"""A running session's record: its live counts, and waiting for its final record.

A running row holds no counts (the run writes them once, at its end: no database write
per event). While it runs, its counts are read from Redis when REDIS_URL is set (the run's
mirror writes them with its batches of events, so every worker, the run's own included,
gives the same answer), else from the live run in this process.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import redis.asyncio as redis

from streaming import records
from streaming.models import StreamSession
from streaming.runs import redislog
from streaming.runs.endings import LIVE_STATUSES
from streaming.runs.registry import find_live_run, live_runs

logger = logging.getLogger(__name__)

# Longest one wait for a sign of a run's end before the row is read again: the sign (the
# run's log closing here, or its end entry in Redis) comes first whenever it can; reading
# the row this rarely covers an end whose sign was lost (Redis failing as the run ended).
ROW_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running session has got."""

    last_event_id: int  # events the run has produced (ids count from 1)
    events_sent: int  # the highest event id handed to a reader


async def live_progress(sessions: list[StreamSession]) -> dict[uuid.UUID, Progress]:
    """Return the progress of the running ones of `sessions` (those that have any)."""
    running = [session.id for session in sessions if session.status in LIVE_STATUSES]
    if not running:
        return {}
    redis_client = redislog.client()
    if redis_client is not None:
        try:
            found = await redislog.read_progress(redis_client, running)
        except redis.RedisError as exc:
            logger.warning("Could not read live progress from Redis: %s", exc)
        else:
            return {key: Progress(last, sent) for key, (last, sent) in found.items()}
    progress = {}
    for session_id in running:
        if (run := find_live_run(session_id)) is not None:
            progress[session_id] = Progress(run.log.last_id, run.delivered)
    return progress


async def wait_final(session_id: uuid.UUID, *, within: float) -> StreamSession | None:
    """Return the session's row once it is final, or as it is when `within` seconds pass.

    None if the row is gone.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while True:
        session = await records.get_session(session_id)
        left = give_up - loop.time()
        if session is None or session.status not in LIVE_STATUSES or left <= 0:
            return session
        await _sign_of_end(session_id, within=min(left, ROW_RECHECK_SECONDS))


async def _sign_of_end(session_id: uuid.UUID, *, within: float) -> None:
    """Return when the run shows it has recorded its end, or after `within` seconds."""
    registry = live_runs()
    run = registry.runs.get(session_id)
    log = run.log if run is not None else registry.retained(session_id)
    if log is not None:
        # A run of this event loop (live, or ending): its log closes once the row is written.
        try:
            async with asyncio.timeout(within):
                while not log.closed:
                    await log.wait(log.last_id)
        except TimeoutError:
            pass
        return
    redis_client = redislog.client()
    if redis_client is not None:
        try:
            # A run elsewhere: its mirror writes the end entry once the row is written.
            await redislog.wait_end(redis_client, session_id, within=within)
            return
        except redis.RedisError as exc:
            logger.warning("Could not wait for the end of %s in Redis: %s", session_id, exc)
    await asyncio.sleep(within)
