"""A chat source for real servers, told by the last message what to do.

`burst N` yields N chunks (10 ms apart), then waits until stopped; `paced N [MS]` yields N
chunks (MS, else 10, ms apart) and finishes; `hang` yields one chunk and waits until
stopped; `linger` is `hang` whose cleanup, once stopped, takes LINGER_SECONDS (a run slow
to record its end).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from streaming.api.requests import ChatRequest
from streaming.sources.base import Event
from tests.support.sources import chunk

PACE_SECONDS = 0.01
LINGER_SECONDS = 5.0


class LiveScriptSource:
    """Follow the script in the request's last message (see the module's docstring)."""

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Return the events of the script."""
        command, *numbers = str(request.messages[-1].content).split()
        count = int(numbers[0]) if numbers else 1
        pace = int(numbers[1]) / 1000 if len(numbers) > 1 else PACE_SECONDS
        return self._events(thread_id, command, count, pace)

    async def _events(
        self, thread_id: str, command: str, count: int, pace: float
    ) -> AsyncGenerator[Event, None]:
        for i in range(count):
            await asyncio.sleep(pace)
            finish = "stop" if command == "paced" and i == count - 1 else None
            yield chunk(thread_id, f"t{i} ", finish=finish)
        if command == "paced":
            return
        try:
            await asyncio.Event().wait()
        finally:
            if command == "linger":
                await asyncio.sleep(LINGER_SECONDS)
