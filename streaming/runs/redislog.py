"""A run's event log mirrored to a Redis stream, so a reader on any worker can replay it.

Entries use explicit ids `0-<event id>`, so `Last-Event-ID: n` is `XREAD` after `0-n`; the
end is one entry `1-0` carrying the outcome. Each stream is trimmed to about
STREAM_LOG_MAX_EVENTS entries and expires STREAM_LOG_TTL_SECONDS after its last write.
Beside it, in the same writes, a hash holds the run's progress (the last event id written
and how many events its readers were handed), which any worker reads for the record; while
no event comes, the count of delivered events is refreshed at most once a second. And
under `snapshot_key`, the run's merged state (snapshot.py) as of some event, for
resumes from ids the stream no longer keeps. It is written with a batch once half of
STREAM_LOG_MAX_EVENTS events were folded in since the last write, and with the end: Redis
keeps at least that many entries, so the events after the state written last are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import cast
from weakref import WeakKeyDictionary

import redis.asyncio as redis

from streaming.conf import conf
from streaming.models import EndReason
from streaming.runs.eventlog import EventLogExpiredError
from streaming.runs.frames import Frame
from streaming.runs.readers import OPENED, PING, Output
from streaming.runs.snapshot import RunSnapshot

logger = logging.getLogger(__name__)

END_ID = b"1-0"
# How often a run's count of delivered events is written while it sends nothing new.
PROGRESS_REFRESH_SECONDS = 1.0

# What XRANGE/XREAD give back for one stream (redis-py's own types are much wider).
Entries = list[tuple[bytes, dict[bytes, bytes]]]

_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, redis.Redis] = WeakKeyDictionary()


def client() -> redis.Redis | None:
    """Return this event loop's Redis client, or None when REDIS_URL is not set."""
    if not conf.redis_url:
        return None
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = redis.Redis.from_url(conf.redis_url)
    return _clients[loop]


def key(session_id: uuid.UUID) -> str:
    """Return the Redis key of a session's log."""
    return f"streaming:log:{session_id.hex}"


def progress_key(session_id: uuid.UUID) -> str:
    """Return the Redis key of a session's progress."""
    return f"streaming:progress:{session_id.hex}"


async def read_progress(
    redis_client: redis.Redis, session_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """Return `(last event id, events delivered)` of the sessions whose run wrote them."""
    pipe = redis_client.pipeline(transaction=False)
    for session_id in session_ids:
        pipe.hmget(progress_key(session_id), ["last_event_id", "delivered"])
    answers = cast(list[list[bytes | None]], await pipe.execute())
    return {
        session_id: (int(last), int(delivered or 0))
        for session_id, (last, delivered) in zip(session_ids, answers, strict=True)
        if last is not None
    }


async def wait_end(redis_client: redis.Redis, session_id: uuid.UUID, *, within: float) -> bool:
    """Wait (at most `within` seconds) for the end entry of a session's log; return if seen."""
    # Every event's id is below `0-<2^64 - 1>`; only the end entry is after it.
    cursor = f"0-{2**64 - 1}"
    answer = await redis_client.xread({key(session_id): cursor}, block=max(1, int(within * 1000)))
    return bool(answer)


def snapshot_key(session_id: uuid.UUID) -> str:
    """Return the Redis key of a session's merged state."""
    return f"streaming:snapshot:{session_id.hex}"


def _encode(frame: Frame) -> dict[str, str]:
    return {"name": frame.name, "json" if frame.is_json else "text": frame.text}


def _decode(event_id: int, fields: dict[bytes, bytes]) -> Frame:
    name = fields[b"name"].decode()
    if b"text" in fields:
        return Frame(event_id, name, fields[b"text"].decode(), False)
    return Frame(event_id, name, fields[b"json"].decode(), True)


class RedisLogWriter:
    """Copy a run's events to Redis in batches, without slowing the run down."""

    def __init__(
        self,
        redis_client: redis.Redis,
        session_id: uuid.UUID,
        delivered: Callable[[], int],
        snapshot: RunSnapshot | None = None,
    ) -> None:
        self._redis = redis_client
        self._key = key(session_id)
        self._progress_key = progress_key(session_id)
        self._delivered = delivered  # written with each batch (and refreshed in silence)
        self._snapshot_key = snapshot_key(session_id)
        self._snapshot = snapshot
        self._snapshot_at = 0  # the last event of the state written last
        self._pending: list[Frame] = []
        self._outcome: EndReason | None = None
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._flush(), name=f"redis-log-{session_id}")

    def add(self, frame: Frame) -> None:
        """Queue one event for the next write."""
        self._pending.append(frame)
        self._wake.set()

    async def close(self, outcome: EndReason) -> None:
        """Write what is queued and the end; wait (bounded) until it is written."""
        self._outcome = outcome
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=conf.cancel_grace_seconds)
        if not done:
            self._task.cancel()
            logger.warning("Redis log %s: gave up writing its end", self._key)

    async def _flush(self) -> None:
        written = 0  # the count of delivered events last written
        while True:
            # Silence: the readers may still be catching up on what was written; their
            # count is written at most once per PROGRESS_REFRESH_SECONDS, only if it moved.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROGRESS_REFRESH_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            ending = self._outcome if not self._pending else None
            delivered = self._delivered()
            if not batch and ending is None and delivered == written:
                continue
            state = self._state(ending is not None)  # as of the batch's last event
            try:
                await self._write(batch, ending, delivered, state)
                written = delivered
            except redis.RedisError as exc:  # Resume from this worker still works.
                logger.warning("Redis log %s: could not write (%s)", self._key, exc)
            if ending is not None:
                return

    def _state(self, ending: bool) -> str | None:
        """Return the merged state to write with this batch, if it is due."""
        snapshot = self._snapshot
        if snapshot is None or snapshot.last_id == self._snapshot_at:
            return None
        due = snapshot.last_id - self._snapshot_at >= max(1, conf.log_max_events // 2)
        if not due and not (ending and self._snapshot_at):
            return None
        self._snapshot_at = snapshot.last_id
        return snapshot.dump()

    async def _write(
        self,
        batch: list[Frame],
        ending: EndReason | None,
        delivered: int,
        state: str | None = None,
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        ttl = int(conf.log_ttl_seconds)
        if state is not None:  # First: a reader that finds it finds the events after it.
            pipe.set(self._snapshot_key, state, ex=max(1, ttl))
        for frame in batch:
            pipe.xadd(
                self._key,
                _encode(frame),  # type: ignore[arg-type]
                id=f"0-{frame.id}",
                maxlen=conf.log_max_events,
                approximate=True,
            )
        if ending is not None:
            pipe.xadd(self._key, {"reason": ending.value}, id=END_ID)
        pipe.expire(self._key, ttl)
        progress = {"delivered": delivered}
        if batch:
            progress["last_event_id"] = batch[-1].id
        pipe.hset(self._progress_key, mapping=progress)  # type: ignore[arg-type]
        pipe.expire(self._progress_key, ttl)
        if self._snapshot_at:
            pipe.expire(self._snapshot_key, ttl)
        await pipe.execute()


class RedisLogReader:
    """Replay a session's log from Redis, then follow it live until its end."""

    def __init__(self, redis_client: redis.Redis, session_id: uuid.UUID) -> None:
        self._redis = redis_client
        self.session_id = session_id
        self._key = key(session_id)
        self.outcome: EndReason | None = None

    async def exists(self) -> bool:
        """Return whether Redis keeps a log for this session."""
        return bool(await self._redis.exists(self._key))

    async def snapshot(self) -> RunSnapshot | None:
        """Return the run's merged state kept beside its log, if any."""
        state = await self._redis.get(snapshot_key(self.session_id))
        return None if state is None else RunSnapshot.load(state)

    async def check(self, after: int) -> None:
        """Raise EventLogExpiredError if events after `after` were trimmed away."""
        first = cast(Entries, await self._redis.xrange(self._key, count=1))
        if first and first[0][0] != END_ID:
            first_kept = int(first[0][0].split(b"-")[1])
            if after + 1 < first_kept:
                raise EventLogExpiredError(after, first_kept)

    async def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield an opening comment, the events after `after`, pings in silence, to the end."""
        yield OPENED
        cursor: bytes | str = f"0-{after}"
        # A read that waits this long without an event yields a ping, as the in-memory log does.
        block_ms = max(1, int(conf.heartbeat_seconds * 1000))
        while True:
            answer = await self._redis.xread({self._key: cursor}, block=block_ms, count=500)
            if not answer:
                yield PING
                continue
            entries = cast(Entries, answer[0][1])  # type: ignore[index]
            batch: list[Frame] = []
            for entry_id, fields in entries:
                if entry_id == END_ID:
                    self.outcome = EndReason(fields[b"reason"].decode())
                    if batch:
                        yield batch
                    return
                batch.append(_decode(int(entry_id.split(b"-")[1]), fields))
                cursor = entry_id
            yield batch
