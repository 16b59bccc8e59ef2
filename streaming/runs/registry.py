"""The live runs of this process, and the heartbeat that keeps their rows marked alive."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator
from typing import Protocol
from weakref import WeakKeyDictionary

from streaming import records
from streaming.conf import conf
from streaming.runs.endings import EndReason
from streaming.runs.eventlog import EventLog
from streaming.runs.readers import Output

logger = logging.getLogger(__name__)


class LiveRun(Protocol):
    """A run as the registry, cancels and shutdown see it (runs/run.py's StreamRun)."""

    session_id: uuid.UUID
    limit_key: str | None  # whose streams it counts against: a user, else an address
    log: EventLog
    loop: asyncio.AbstractEventLoop
    delivered: int  # the highest event id handed to a reader

    @property
    def outcome(self) -> EndReason | None:
        """How the run ended, once it has."""
        ...

    def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield what a transport sends."""
        ...

    def cancel_requested(self, reason: EndReason = EndReason.USER_CANCEL) -> None:
        """End the run as cancelled by a user (or for `reason`)."""
        ...

    async def stop(self, reason: EndReason) -> None:
        """End the run for `reason` and wait (bounded) for its record."""
        ...


class LiveRuns:
    """Track this event loop's live runs; while any exist, refresh their rows' heartbeat.

    Logs of finished runs are kept for resumes: the most recent STREAM_LOG_RETAIN, for
    STREAM_LOG_TTL_SECONDS.

    One UPDATE per interval for all of them: a row whose heartbeat goes stale belongs to a
    worker that died, and the sweep marks it `interrupted/worker_lost`.
    """

    def __init__(self) -> None:
        self.runs: dict[uuid.UUID, LiveRun] = {}
        # Streams per client (user, else address): live runs plus streams still opening.
        self.per_client: Counter[str | None] = Counter()
        self.opening = 0
        self._beat: asyncio.Task[None] | None = None
        self._retained: OrderedDict[uuid.UUID, tuple[float, EventLog]] = OrderedDict()

    def add(self, run: LiveRun) -> None:
        """Register a run that has started."""
        self.runs[run.session_id] = run
        self.per_client[run.limit_key] += 1
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(
                self._heartbeat(), name="stream-heartbeat", context=contextvars.Context()
            )

    def retire(self, run: LiveRun) -> None:
        """Move a run that is ending from the live runs to the kept logs, in one step.

        Its log stays readable throughout: resumes of the ending run follow it to its close.
        """
        if self.runs.pop(run.session_id, None) is not None:
            self.per_client[run.limit_key] -= 1
            if not self.per_client[run.limit_key]:
                del self.per_client[run.limit_key]
        self._retained[run.session_id] = (asyncio.get_running_loop().time(), run.log)
        while len(self._retained) > conf.log_retain:
            self._retained.popitem(last=False)
        if not self.runs and self._beat is not None:
            self._beat.cancel()
            self._beat = None

    def retained(self, session_id: uuid.UUID) -> EventLog | None:
        """Return a finished run's kept log, if it is still kept."""
        entry = self._retained.get(session_id)
        if entry is None:
            return None
        if asyncio.get_running_loop().time() - entry[0] > conf.log_ttl_seconds:
            del self._retained[session_id]
            return None
        return entry[1]

    async def _heartbeat(self) -> None:
        while self.runs:
            await asyncio.sleep(conf.row_heartbeat_seconds)
            try:
                await records.touch_sessions(list(self.runs))
            except Exception as exc:  # A missed beat is retried; the streams go on.
                logger.warning("Could not refresh the heartbeat of live sessions: %s", exc)


_registries: WeakKeyDictionary[asyncio.AbstractEventLoop, LiveRuns] = WeakKeyDictionary()


def live_runs() -> LiveRuns:
    """Return the registry of the running event loop."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = LiveRuns()
    return registry


def find_live_run(session_id: uuid.UUID) -> LiveRun | None:
    """Return the live run of `session_id` on any event loop of this process, or None."""
    for registry in list(_registries.values()):
        if (run := registry.runs.get(session_id)) is not None:
            return run
    return None


def all_live_runs() -> list[LiveRun]:
    """Return the live runs of every event loop of this process."""
    return [run for registry in list(_registries.values()) for run in list(registry.runs.values())]
