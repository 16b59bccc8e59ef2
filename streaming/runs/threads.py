"""One live run per thread: who holds a thread, and what a request does when it is held.

A chat run holds its thread from admission until its row is final (`StreamRun._finish`
releases it). Holds are scoped by owner, so users of `STREAM_AUTH=users` never meet each
other's threads. With Redis (REDIS_URL) a hold is the key `streaming:thread:<owner>:<thread>`
holding the session id, taken with `SET NX` (of two requests that arrive together exactly
one gets it) with a TTL of STREAM_STALE_AFTER_SECONDS that the run refreshes every
STREAM_ROW_HEARTBEAT_SECONDS: a worker that dies frees its threads within that time, as the
sweep ends its rows. Without Redis the holds are a dict of this event loop.

A request whose thread is held follows its `multitask_strategy` (`admit_to_thread`):
`reject` (409 naming the live session), `interrupt` (cancel the holder with reason
`superseded` through the one cancel path, wait bounded until its row is final, then run),
or `enqueue` (open at once, queued; the run waits its turn, `ThreadHold.wait_turn`, under
its deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from typing import Protocol
from weakref import WeakKeyDictionary

import redis.asyncio as redis

from streaming import records
from streaming.api.errors import Refusal
from streaming.api.responses import ThreadBusy
from streaming.conf import MultitaskStrategy, conf
from streaming.runs import redislog
from streaming.runs.cancel import request_cancel
from streaming.runs.endings import EndReason

logger = logging.getLogger(__name__)

# How often a waiter looks again (without Redis, a release also wakes it at once): from the
# first, doubling up to the last.
POLL_FIRST_SECONDS = 0.02
POLL_MAX_SECONDS = 0.25

# Compare-and-act on a hold: only its holder may refresh or release it.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_REFRESH = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


def thread_key(owner_id: int | None, thread_id: str) -> str:
    """Return the key of a thread: its owner's (none outside `STREAM_AUTH=users`) and its id."""
    return f"{owner_id or '-'}:{thread_id}"


def supersede_wait_seconds() -> float:
    """Return how long `interrupt` waits for the holder's row to be final.

    The holder's cleanup is bounded by STREAM_CANCEL_GRACE_SECONDS; its final write and the
    cancel's trip between workers get as long again, and one second more.
    """
    return 2 * conf.cancel_grace_seconds + 1.0


class _Holds(Protocol):
    async def take(self, key: str, session_id: uuid.UUID) -> uuid.UUID | None: ...
    async def refresh(self, key: str, session_id: uuid.UUID) -> bool: ...
    async def release(self, key: str, session_id: uuid.UUID) -> None: ...
    async def freed(self, key: str, seconds: float) -> None: ...


class _LocalHolds:
    """The holds of one event loop (no Redis: one process serves every thread)."""

    def __init__(self) -> None:
        self.holders: dict[str, uuid.UUID] = {}
        self._freed: dict[str, asyncio.Event] = {}

    async def take(self, key: str, session_id: uuid.UUID) -> uuid.UUID | None:
        holder = self.holders.setdefault(key, session_id)
        return None if holder == session_id else holder

    async def refresh(self, key: str, session_id: uuid.UUID) -> bool:
        return self.holders.get(key) == session_id

    async def release(self, key: str, session_id: uuid.UUID) -> None:
        if self.holders.get(key) == session_id:
            del self.holders[key]
            if (freed := self._freed.pop(key, None)) is not None:
                freed.set()

    async def freed(self, key: str, seconds: float) -> None:
        event = self._freed.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


class _RedisHolds:
    """Holds shared by every worker, as Redis keys with a TTL."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @staticmethod
    def _key(key: str) -> str:
        return f"streaming:thread:{key}"

    async def take(self, key: str, session_id: uuid.UUID) -> uuid.UUID | None:
        ttl_ms = max(1, int(conf.stale_after_seconds * 1000))
        while True:
            if await self._redis.set(self._key(key), session_id.hex, nx=True, px=ttl_ms):
                return None
            holder = await self._redis.get(self._key(key))
            if holder is not None:  # else released in between: try again
                return uuid.UUID(hex=holder.decode() if isinstance(holder, bytes) else holder)

    async def refresh(self, key: str, session_id: uuid.UUID) -> bool:
        ttl_ms = max(1, int(conf.stale_after_seconds * 1000))
        return bool(await self._redis.eval(_REFRESH, 1, self._key(key), session_id.hex, ttl_ms))

    async def release(self, key: str, session_id: uuid.UUID) -> None:
        await self._redis.eval(_RELEASE, 1, self._key(key), session_id.hex)

    async def freed(self, key: str, seconds: float) -> None:
        await asyncio.sleep(seconds)  # The caller backs off; a release publishes nothing.


_local: WeakKeyDictionary[asyncio.AbstractEventLoop, _LocalHolds] = WeakKeyDictionary()


def _holds() -> _Holds:
    client = redislog.client()
    if client is not None:
        return _RedisHolds(client)
    loop = asyncio.get_running_loop()
    if loop not in _local:
        _local[loop] = _LocalHolds()
    return _local[loop]


class ThreadHold:
    """One run's claim on its thread: taken at admission or when its turn comes."""

    def __init__(self, key: str, session_id: uuid.UUID) -> None:
        self.key = key
        self.session_id = session_id
        self._holds = _holds()
        self._keeper: asyncio.Task[None] | None = None
        self._poll = POLL_FIRST_SECONDS
        self._released = False
        self.queued = False  # its run waits its turn (`enqueue`) before its source starts

    async def take(self) -> uuid.UUID | None:
        """Take the thread if it is free (None), else return the session that holds it."""
        holder = await self._holds.take(self.key, self.session_id)
        if holder is None and self._keeper is None and isinstance(self._holds, _RedisHolds):
            self._keeper = asyncio.create_task(
                self._keep(), name=f"thread-hold-{self.session_id}", context=contextvars.Context()
            )
        return holder

    async def freed(self, *, at_most: float | None = None) -> None:
        """Return when the thread may have been freed, or after a while: look again."""
        wait = self._poll if at_most is None else min(self._poll, at_most)
        self._poll = min(self._poll * 2, POLL_MAX_SECONDS)
        await self._holds.freed(self.key, max(0.0, wait))

    async def wait_turn(self) -> None:
        """Wait until the thread is free and this run holds it, then mark its row running.

        The run calls it under its deadline, where cancels reach it, and before its stall
        watchdog starts: waiting for a turn is not a silent source.
        """
        while await self.take() is not None:
            await self.freed()
        self.queued = False
        await records.start_queued(self.session_id)

    async def release(self) -> None:
        """Free the thread if this run holds it (bounded, never raises: the TTL frees it
        otherwise)."""
        if self._released:
            return
        self._released = True
        if self._keeper is not None:
            self._keeper.cancel()
        try:
            async with asyncio.timeout(conf.cancel_grace_seconds):
                await self._holds.release(self.key, self.session_id)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            logger.warning("Stream %s: could not free its thread (%s)", self.session_id, exc)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(conf.row_heartbeat_seconds)
            try:
                if not await self._holds.refresh(self.key, self.session_id):
                    logger.warning("Stream %s: its thread hold expired", self.session_id)
                    return
            except (redis.RedisError, OSError) as exc:  # Retried at the next beat.
                logger.warning("Stream %s: could not refresh its thread (%s)", self.session_id, exc)


async def free_thread(hold: ThreadHold | None) -> None:
    """Free a run's thread once its row is final (even if this task is cancelled meanwhile)."""
    if hold is not None:
        await records.survive_cancel(hold.release())


async def admit_to_thread(hold: ThreadHold, strategy: MultitaskStrategy) -> bool:
    """Apply `strategy` when the thread is held; return whether the new run must queue.

    Raises 409 (`reject`) naming the live session, or 503 when the run it interrupts does
    not end in time.
    """
    holder = await hold.take()
    if holder is None:
        return False
    if strategy == "reject":
        refusal = Refusal.THREAD_BUSY
        raise refusal.error(body=ThreadBusy(detail=refusal.detail, session_id=holder))
    if strategy == "enqueue":
        hold.queued = True
        return True
    await _supersede(hold, holder)
    return False


async def _supersede(hold: ThreadHold, holder: uuid.UUID | None) -> None:
    """Cancel whoever holds the thread (reason `superseded`) until this run holds it."""
    loop = asyncio.get_running_loop()
    until = loop.time() + supersede_wait_seconds()
    told: uuid.UUID | None = None
    while holder is not None:
        if holder != told:
            logger.info("Stream %s supersedes %s", hold.session_id, holder)
            told = holder
        # Sent again while the same run holds the thread: a cancel that reached it before
        # it joined its cancel group (or before its row existed) was lost.
        await request_cancel(holder, reason=EndReason.SUPERSEDED)
        if loop.time() >= until:
            raise Refusal.THREAD_NOT_FREED.error()
        await hold.freed(at_most=until - loop.time())
        holder = await hold.take()
