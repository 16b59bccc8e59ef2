"""The stall watchdog: a run whose source yields nothing for STREAM_IDLE_TIMEOUT_SECONDS ends.

It watches the source's side, in the task that drives the source, never the readers': the
`: ping` heartbeats readers send in silence do not feed it, so they cannot hide a producer
that died. The time a run waits for a slow reader to make room in its log does not count
(the source is not being asked then). One timer per run, re-armed lazily: an event only
notes the time, so the watchdog costs no timer per event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

logger = logging.getLogger(__name__)


class StallWatchdog:
    """Call `on_stall` once if `fed()` is not called for `idle_seconds` (0: never)."""

    def __init__(self, idle_seconds: float, on_stall: Callable[[], None], *, name: str) -> None:
        self._idle = idle_seconds
        self._on_stall = on_stall
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._fed_at = self._loop.time()
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self.stalled = False

    def __enter__(self) -> StallWatchdog:
        if self._idle > 0:
            self._fed_at = self._loop.time()
            self._timer = self._loop.call_at(self._fed_at + self._idle, self._check)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def fed(self) -> None:
        """Note that the source yielded an event now."""
        self._fed_at = self._loop.time()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Do not count the time of this block (the run waits for its readers, not its source)."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False
            self._fed_at = self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        due = self._fed_at + self._idle
        if self._paused or now < due:
            when = now + self._idle if self._paused else due
            self._timer = self._loop.call_at(when, self._check)
            return
        self._timer = None
        self.stalled = True
        logger.warning("%s: its source sent nothing for %g s; ending it", self._name, self._idle)
        self._on_stall()
