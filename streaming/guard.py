"""The one guard every stream passes through: deadline, cancellation, errors, the record.

A `StreamRun` drives its source in a task of its own, under the deadline, into an
`EventLog`; transports read the log through `StreamRun.follow()`. The run is the only
writer of the session's final record; every way a stream can end becomes one
`EndReason` here, and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from streaming import control, records
from streaming.conf import conf
from streaming.eventlog import EventLog, Numbered
from streaming.liveness import live_runs
from streaming.models import EndReason, Kind, Transport
from streaming.schemas import ChatRequest, ProseRequest
from streaming.sources import chat_source, prose_source
from streaming.sources.base import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment frame: clients ignore it, proxies see bytes flow."""

    text: str


OPENED = Comment("stream open")
PING = Comment("ping")

Output = Comment | list[Numbered]

# The final frame a stream sends for each way of ending that still has a listener.
PUBLIC_ENDINGS: dict[EndReason, tuple[str, str]] = {
    EndReason.TIMEOUT: ("timeout", "The stream took longer than the server allows."),
    EndReason.USER_CANCEL: ("cancelled", "The stream was cancelled."),
    EndReason.ERROR: ("error", "The stream failed because of an internal error."),
    EndReason.SERVER_SHUTDOWN: ("shutdown", "The server is restarting; the stream stopped."),
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who opened a stream, as the transport saw them."""

    address: str | None
    user_agent: str


class StreamRun:
    """Drive one source to its end under the deadline and record how it ended."""

    def __init__(
        self,
        *,
        session_id: uuid.UUID,
        kind: Kind,
        thread_id: str,
        events: AsyncGenerator[Event, None],
    ) -> None:
        self.session_id = session_id
        self.kind = kind
        self.thread_id = thread_id
        self.log = EventLog(maxlen=conf.buffer_events)
        self.outcome: EndReason | None = None
        self.delivered = 0
        self._events = events
        self._stop_reason: EndReason | None = None
        self._started = False
        self._subscription: control.CancelSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join the control plane, then start driving the source (once)."""
        if self._started:
            return
        self._started = True
        self._subscription = await control.CancelSubscription.join(self.session_id)
        # A fresh context: the run may outlive the request that started it, and must not
        # inherit that request's thread for sync calls.
        context = contextvars.Context()
        name = f"stream-run-{self.session_id}"
        self._task = asyncio.create_task(self._drive(), name=name, context=context)
        self._listener = asyncio.create_task(self._listen(), name=f"{name}-cancel", context=context)
        live_runs().add(self)

    def request_stop(self, reason: EndReason) -> None:
        """Ask the run to end for `reason`, unless it has ended or is already ending."""
        if self.outcome is None and self._stop_reason is None and self._task is not None:
            self._stop_reason = reason
            self._task.cancel()

    async def stop(self, reason: EndReason) -> None:
        """End the run for `reason` unless it has ended; wait (bounded) for its record."""
        if self._task is not None:
            self.request_stop(reason)
            await records.survive_cancel(self._wait_finished())
        if self.outcome is None and (self._task is None or self._task.done()):
            # Never started, or cancelled before its first step: no ending ran yet.
            await records.survive_cancel(self._close_unstarted(reason))

    async def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield what a transport sends: an opening comment, event batches, pings.

        If the transport is cancelled (its client went away), the run is stopped first
        (with STREAM_ON_DISCONNECT=cancel) and the cancel is re-raised.
        """
        cursor = after
        heartbeat = conf.heartbeat_seconds
        try:
            await self.start()
            yield OPENED
            while True:
                batch = self.log.after(cursor)
                if batch:
                    yield batch
                    cursor = self.delivered = batch[-1][0]
                    continue
                if self.log.closed:
                    return
                try:
                    async with asyncio.timeout(heartbeat):
                        await self.log.wait(cursor)
                except TimeoutError:
                    yield PING
        except (asyncio.CancelledError, GeneratorExit):
            if conf.on_disconnect == "cancel" or self._task is None:
                await self.stop(EndReason.CLIENT_DISCONNECT)
            raise

    async def _listen(self) -> None:
        assert self._subscription is not None
        await self._subscription.wait()
        logger.info("Stream %s: cancel requested", self.session_id)
        self.request_stop(EndReason.USER_CANCEL)

    async def _drive(self) -> None:
        reason, error = EndReason.NONE, ""
        deadline = asyncio.get_running_loop().time() + conf.timeout_seconds
        scope = asyncio.timeout_at(deadline)
        try:
            # The deadline bounds every wait for the source's next event; this task never
            # yields to a transport, so a timeout here cannot be mistaken for a disconnect.
            async with scope, contextlib.aclosing(self._events) as events:
                async for event in events:
                    self.log.append(event)
        except TimeoutError as exc:
            if scope.expired():
                reason = EndReason.TIMEOUT
            else:
                reason, error = EndReason.ERROR, self._failed(exc)
        except asyncio.CancelledError:
            if self._stop_reason is None:
                # Not ours: the event loop is going away with the process.
                await self._finish(EndReason.SERVER_SHUTDOWN, "")
                raise
            reason = self._stop_reason
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception as exc:
            reason, error = EndReason.ERROR, self._failed(exc)
        await self._finish(reason, error)

    def _failed(self, exc: Exception) -> str:
        error = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
        logger.error("Stream %s failed: %s", self.session_id, error, exc_info=exc)
        return error

    async def _close_unstarted(self, reason: EndReason) -> None:
        async with contextlib.aclosing(self._events):
            pass
        await self._finish(reason, "")

    async def _finish(self, reason: EndReason, error: str) -> None:
        """Record the end, then send the guard's final frame where someone listens."""
        if self.outcome is not None:
            return
        self.outcome = reason
        live_runs().discard(self)
        if self._listener is not None and self._listener is not asyncio.current_task():
            self._listener.cancel()
        ending = PUBLIC_ENDINGS.get(reason)
        last_id = self.log.last_id + (1 if ending else 0)
        delivered = self.delivered if reason is EndReason.CLIENT_DISCONNECT else last_id
        try:
            await records.survive_cancel(
                records.finish_session(
                    self.session_id,
                    reason=reason,
                    events_sent=delivered,
                    last_event_id=last_id,
                    error=error,
                )
            )
        except Exception as exc:
            # The stream still ends for its readers; the stale-session sweep ends the row.
            logger.error("Stream %s: could not record its end (%s)", self.session_id, exc)
        if ending is not None:
            self.log.append(self._error_event(*ending))
        self.log.close()
        _log_end(self.session_id, reason, delivered)
        if self._subscription is not None:
            await records.survive_cancel(self._subscription.leave())

    def _error_event(self, public_reason: str, message: str) -> Event:
        data: dict[str, Any] = {"error": message, "reason": public_reason}
        if self.kind == Kind.CHAT:
            data = {"thread_id": self.thread_id, **data}
        return Event("error", data)

    async def _wait_finished(self) -> None:
        assert self._task is not None
        done, _ = await asyncio.wait({self._task}, timeout=conf.cancel_grace_seconds)
        if not done:
            logger.warning(
                "Stream %s did not finish within %.1f s of being stopped",
                self.session_id,
                conf.cancel_grace_seconds,
            )


def _log_end(session_id: uuid.UUID, reason: EndReason, delivered: int) -> None:
    if reason is EndReason.NONE:
        logger.info("Stream %s completed after %d events", session_id, delivered)
    elif reason is EndReason.ERROR:
        return  # Logged with its exception where it happened.
    else:
        logger.info("Stream %s ended: %s after %d events", session_id, reason.label, delivered)


class StreamGuardMixin:
    """Open guarded streams: the one entry point of the SSE views and the WebSocket consumer."""

    async def open_chat_stream(
        self, request: ChatRequest, *, transport: Transport, client: ClientInfo
    ) -> StreamRun:
        """Record a new chat stream and return its (not yet started) run."""
        thread_id = request.resolved_thread_id()
        events = chat_source(conf.chat_source).stream(request, thread_id=thread_id)
        return await self._open(
            Kind.CHAT, conf.chat_source, request, events, thread_id, transport, client
        )

    async def open_prose_stream(
        self, request: ProseRequest, *, transport: Transport, client: ClientInfo
    ) -> StreamRun:
        """Record a new prose stream and return its (not yet started) run."""
        events = prose_source(conf.prose_source).stream(request)
        return await self._open(
            Kind.PROSE, conf.prose_source, request, events, "", transport, client
        )

    async def _open(
        self,
        kind: Kind,
        source: str,
        request: ChatRequest | ProseRequest,
        events: AsyncGenerator[Event, None],
        thread_id: str,
        transport: Transport,
        client: ClientInfo,
    ) -> StreamRun:
        session_id = await records.open_session(
            kind=kind,
            transport=transport,
            thread_id=thread_id,
            source=source,
            request_params=request.model_dump(mode="json"),
            client_address=client.address,
            user_agent=client.user_agent,
        )
        return StreamRun(session_id=session_id, kind=kind, thread_id=thread_id, events=events)
