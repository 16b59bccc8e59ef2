"""The live runs of this process, and the heartbeat that keeps their rows marked alive."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from typing import Protocol
from weakref import WeakKeyDictionary

from streaming import records
from streaming.conf import conf

logger = logging.getLogger(__name__)


class LiveRun(Protocol):
    """What the registry needs of a run."""

    session_id: uuid.UUID


class LiveRuns:
    """Track this event loop's live runs; while any exist, refresh their rows' heartbeat.

    One UPDATE per interval for all of them: a row whose heartbeat goes stale belongs to a
    worker that died, and the sweep marks it `interrupted/worker_lost`.
    """

    def __init__(self) -> None:
        self.runs: dict[uuid.UUID, LiveRun] = {}
        self._beat: asyncio.Task[None] | None = None

    def add(self, run: LiveRun) -> None:
        """Register a run that has started."""
        self.runs[run.session_id] = run
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(
                self._heartbeat(), name="stream-heartbeat", context=contextvars.Context()
            )

    def discard(self, run: LiveRun) -> None:
        """Forget a run that has ended."""
        self.runs.pop(run.session_id, None)
        if not self.runs and self._beat is not None:
            self._beat.cancel()
            self._beat = None

    async def _heartbeat(self) -> None:
        while self.runs:
            await asyncio.sleep(conf.heartbeat_seconds)
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
