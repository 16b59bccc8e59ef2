"""The benchmark's synthetic chat source (selected only by STREAM_CHAT_SOURCE=synthetic).

It speaks the request contract of the shared SSE benchmark harness, so the benchmark
measures this project's whole stack (guard, session row, ids, heartbeat) against the
anchor servers on the same source: `n` deer-flow `message_chunk` events, event i due at
`start + (i + 1) * delay_ms` (an absolute schedule; with no delay it still awaits between
events, as a real upstream does). When it ends for any reason it appends one line to the
file named by BENCH_CLEANUP_LOG, which is how the harness times disconnect cleanup.

The harness hands its two files to the server process in the environment, so this module
reads them there (the one exception to "only settings read the environment": they are the
harness's signal, not configuration of the app).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from streaming.api.requests import ChatRequest
from streaming.sources.base import Event, SourceError

# A deer-flow-like token stream (mixed lengths, one non-ASCII token), as the anchors send.
TOKENS = (
    " The", " quick", " brown", " fox", " jumps", " over", " the", " lazy",
    " dog", ".", " Research", " findings", " indicate", " that", " streaming",
    " latency", " matters", ",", " 研究", " results", "\n\n", "##", " Summary",
)  # fmt: skip
AGENT = "coder"
GC_PAUSE_MIN_MS = 2.0


class SyntheticParams(BaseModel):
    """The harness's fields of a chat request body (deer-flow's own fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    n: Annotated[int, Field(ge=0, le=2_000_000)] = 100
    delay_ms: Annotated[float, Field(ge=0, le=60_000)] = 0.0
    stream_id: Annotated[str, StringConstraints(max_length=256)] = ""


class CleanupLog:
    """Append one line per ending stream: `<unix time> <stream id> <reason> <events sent>`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def write(self, stream_id: str, reason: str, sent: int) -> None:
        """Append the line in one write (O_APPEND: whole lines, even from several workers)."""
        line = f"{time.time():.6f} {stream_id} {reason} {sent}\n".encode()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)
        except OSError:
            pass  # A diagnostic for the harness; the stream's own ending does not depend on it.


class GcPauseLog:
    """Append `<unix time> gc <generation> <pause ms> <collected>` for each long GC pause."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """Time a collection (a `gc.callbacks` hook)."""
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        if pause_ms >= GC_PAUSE_MIN_MS:
            line = f"{time.time():.6f} gc {info['generation']} {pause_ms:.2f} {info['collected']}\n"
            os.write(self._fd, line.encode())


def _cleanup_log() -> CleanupLog | None:
    path = os.environ.get("BENCH_CLEANUP_LOG")
    return CleanupLog(path) if path else None


def _install_gc_log() -> None:
    # Stop-the-world collections stall every stream of the process: the benchmark's s2
    # reports them next to the lateness they cause.
    path = os.environ.get("BENCH_GC_LOG")
    if path:
        gc.callbacks.append(GcPauseLog(path))


class SyntheticChatSource:
    """Stream `n` paced `message_chunk` events of one coder message, as the harness asks."""

    def __init__(self) -> None:
        self._cleanup_log = _cleanup_log()
        _install_gc_log()

    def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Return the events for the harness's `n`, `delay_ms` and `stream_id`."""
        try:
            params = SyntheticParams.model_validate(request.extra_fields)
        except ValidationError as exc:
            return _refused(exc)
        return self._events(params, thread_id=thread_id)

    async def _events(
        self, params: SyntheticParams, *, thread_id: str
    ) -> AsyncGenerator[Event, None]:
        stream_id = params.stream_id or thread_id
        message_id = f"run-{stream_id}"
        delay = params.delay_ms / 1000
        loop = asyncio.get_running_loop()
        sent, reason = 0, "complete"
        start = loop.time()
        try:
            for i in range(params.n):
                if delay:
                    await asyncio.sleep(max(0.0, start + (i + 1) * delay - loop.time()))
                else:
                    await asyncio.sleep(0)
                data: dict[str, Any] = {
                    "thread_id": thread_id,
                    "agent": AGENT,
                    "id": message_id,
                    "role": "assistant",
                    "content": TOKENS[i % len(TOKENS)],
                }
                if i == params.n - 1:
                    data["finish_reason"] = "stop"
                sent += 1
                yield Event("message_chunk", data)
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except GeneratorExit:
            reason = "closed"
            raise
        except BaseException:
            reason = "error"
            raise
        finally:
            if self._cleanup_log is not None:
                self._cleanup_log.write(stream_id, reason, sent)


async def _refused(exc: ValidationError) -> AsyncGenerator[Event, None]:
    """End the stream with the guard's `error` frame: the harness sent fields out of range."""
    raise SourceError("The synthetic source's parameters are invalid.", detail=str(exc))
    yield  # pragma: no cover  (makes this an async generator)
