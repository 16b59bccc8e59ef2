"""The run of one stream: deadline, cancellation, errors and the final record.

A `StreamRun` drives its source in a task of its own, under the deadline, into an
`EventLog`; transports read the log through `StreamRun.follow()`. The run is the only
writer of the session's final record; every way a stream can end becomes one
`EndReason` here, and nowhere else. Transports reach it through `opening.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import uuid
from collections.abc import AsyncGenerator

from streaming import records
from streaming.conf import OnDisconnect, conf
from streaming.models import Kind
from streaming.observe.context import StreamTags
from streaming.observe.runs import RunObservation
from streaming.observe.tracing import parent_context
from streaming.runs import cancel as control
from streaming.runs import redislog, shutdown, webhooks
from streaming.runs.endings import EndReason, FinalFrame
from streaming.runs.eventlog import EventLog
from streaming.runs.frames import failure, final_event
from streaming.runs.readers import Comment, Output, reader_gone
from streaming.runs.registry import live_runs
from streaming.runs.threads import ThreadHold, free_thread
from streaming.runs.watchdog import StallWatchdog
from streaming.sources.base import Event

logger = logging.getLogger(__name__)


class StreamRun:
    """Drive one source to its end under the deadline and record how it ended."""

    def __init__(
        self,
        *,
        session_id: uuid.UUID,
        kind: Kind,
        thread_id: str,
        events: AsyncGenerator[Event, None],
        limit_key: str | None = None,
        on_disconnect: OnDisconnect = "cancel",
        transport: str = "",
        source: str = "",
        hold: ThreadHold | None = None,
    ) -> None:
        self.session_id = session_id
        self.hold = hold  # its thread, held until its row is final
        self.tags = StreamTags(str(session_id), thread_id, str(kind), transport, source)
        self.observed = RunObservation(self.tags)
        self.on_disconnect = on_disconnect
        self.limit_key = limit_key
        self.kind = kind
        self.thread_id = thread_id
        self.loop = asyncio.get_running_loop()  # where it runs (cancels from elsewhere go here)
        self.log = EventLog(max_events=conf.log_max_events, max_bytes=conf.log_max_bytes)
        self.delivered = 0
        self._events = events
        self._readers = 0
        self._stop_reason: EndReason | None = None
        self._started = False
        self._finishing = False
        self._subscription: control.CancelSubscription | None = None
        self._mirror: redislog.RedisLogWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._unread: asyncio.TimerHandle | None = None
        # The first reader's place, held from event 0 until it attaches and holds it itself.
        self._first_reader: object | None = object()
        self.log.hold(self._first_reader, 0)

    @property
    def outcome(self) -> EndReason | None:
        """How the run ended, once it has."""
        return self.log.outcome

    async def start(self) -> None:
        """Join the control plane, then start driving the source (once).

        Runs start when their record opens, before any byte is sent: a cancel sent right
        after the client read `X-Stream-Session-Id` finds the run subscribed, and shutdown
        finds it live. With STREAM_ON_DISCONNECT=cancel, a run that no reader attaches to
        within the cancel grace (its client left before the body began) is stopped.
        """
        if self._started:
            return
        self._started = True
        if control.needs_layer():
            self._subscription = await control.CancelSubscription.join(self.session_id)
        # A fresh context: the run may outlive the request that started it, and must not
        # inherit that request's thread for sync calls.
        context = contextvars.Context()
        # Its log lines name the stream; its span is a child of the request's.
        context.run(self.observed.started, parent_context())
        name = f"stream-run-{self.session_id}"
        redis_client = redislog.client()
        if redis_client is not None:
            mirror = redislog.RedisLogWriter
            self._mirror = context.run(
                mirror, redis_client, self.session_id, lambda: self.delivered, self.log.snapshot
            )
        self._task = asyncio.create_task(self._drive(), name=name, context=context)
        if self._subscription is not None:
            self._listener = asyncio.create_task(
                self._listen(self._subscription), name=f"{name}-cancel", context=context
            )
        live_runs().add(self)
        # In the run's context: a timer holds its context (the request's would hold its thread).
        self._unread = self.loop.call_later(
            conf.cancel_grace_seconds, self._never_read, context=context
        )

    def _read(self) -> None:
        """Stop waiting for the first reader (it came, or the run ends)."""
        if self._unread is not None:
            self._unread.cancel()
            self._unread = None

    def _never_read(self) -> None:
        """Give up on the first reader (its client left before the body began)."""
        if self._first_reader is not None:
            self.log.release(self._first_reader)
            self._first_reader = None
        if self.on_disconnect == "cancel" and self._readers == 0:
            self.request_stop(EndReason.CLIENT_DISCONNECT)

    def request_stop(self, reason: EndReason) -> None:
        """Ask the run to end for `reason`, unless it has ended or is already ending."""
        # Not once it is finishing: a cancel then would cut its ending short.
        if self._stop_reason is None and not self._finishing and self._task is not None:
            self._stop_reason = reason
            self.observed.stop_requested(reason)
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
        """Yield what a transport sends (see EventLog.follow), counting this reader.

        When the transport is cancelled or closed: with STREAM_ON_DISCONNECT=cancel the
        last reader to go away stops the run (recorded as a client disconnect, a client
        dropped for not reading, or a shutdown while the server stops); then the cancel is
        re-raised.
        """
        self._readers += 1
        self._read()
        reader, self._first_reader = self._first_reader or object(), None
        try:
            await self.start()
            async with contextlib.aclosing(self.log.follow(after=after, reader=reader)) as outputs:
                async for output in outputs:
                    yield output
                    if not isinstance(output, Comment):
                        self.delivered = max(self.delivered, output[-1].id)
        except (asyncio.CancelledError, GeneratorExit):
            self._readers -= 1
            if self._readers == 0 and self.on_disconnect == "cancel":
                await self.stop(reader_gone(shutting_down=shutdown.in_progress()))
            raise
        else:
            self._readers -= 1

    def cancel_requested(self, reason: EndReason = EndReason.USER_CANCEL) -> None:
        """End the run as cancelled by a user (the cancel API, the admin, a WebSocket), or
        for `reason` (a newer run on its thread superseding it)."""
        told = "cancel requested" if reason is EndReason.USER_CANCEL else reason.label
        logger.info("Stream %s: %s", self.session_id, told)
        self.request_stop(reason)

    async def _listen(self, subscription: control.CancelSubscription) -> None:
        self.cancel_requested(await subscription.next_cancel(self.session_id))

    def client_left(self) -> None:
        """A transport saw its client leave: if that was the last reader, end the run now
        (STREAM_ON_DISCONNECT=cancel), not once the reader has closed (`follow` confirms it)."""
        if self._readers == 1 and self.on_disconnect == "cancel":
            self.request_stop(reader_gone(shutting_down=shutdown.in_progress()))

    async def _drive(self) -> None:
        reason, error, public = EndReason.NONE, "", None
        deadline = asyncio.get_running_loop().time() + conf.timeout_seconds
        scope = asyncio.timeout_at(deadline)
        stalled = functools.partial(self.request_stop, EndReason.STALLED)
        try:
            # The deadline bounds every wait for the source's next event; this task never
            # yields to a transport, so a timeout here cannot be mistaken for a disconnect.
            async with scope, contextlib.aclosing(self._events) as events:
                if self.hold is not None and self.hold.queued:
                    await self.hold.wait_turn()  # (enqueue) before the watchdog: not a stall
                idle = conf.idle_timeout_seconds
                with StallWatchdog(idle, stalled, name=f"Stream {self.session_id}") as watchdog:
                    async for event in events:
                        watchdog.fed()
                        if not self.log.last_id:
                            self.observed.first_event()
                        self._append(event)
                        if self.log.full():
                            with watchdog.paused():
                                await self.log.room()
        except TimeoutError as exc:
            if scope.expired():
                reason = EndReason.TIMEOUT
            else:
                reason, (error, public) = EndReason.ERROR, failure(self.session_id, exc)
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
            reason, (error, public) = EndReason.ERROR, failure(self.session_id, exc)
        await self._finish(reason, error, public_error=public)

    def _append(self, event: Event) -> None:
        self.log.append(event)
        if self._mirror is not None:
            self._mirror.add(self.log.newest())

    async def _close_unstarted(self, reason: EndReason) -> None:
        async with contextlib.aclosing(self._events):
            pass
        await self._finish(reason, "")

    async def _finish(
        self, reason: EndReason, error: str, *, public_error: str | None = None
    ) -> None:
        """Record the end, then send the guard's final frame where someone listens
        (`public_error` replaces the generic text of a failure's `error` frame)."""
        if self._finishing or self.log.closed:
            return
        self._finishing = True
        live_runs().retire(self)
        self._read()
        if self._listener is not None and self._listener is not asyncio.current_task():
            self._listener.cancel()
        ending = reason.ending
        frame = ending.frame
        if frame is not None and public_error:
            frame = FinalFrame(frame.reason, public_error)
        last_id = self.log.last_id + (1 if frame else 0)
        delivered = self.delivered if ending.reader_gone else last_id
        try:
            await records.survive_cancel(
                records.finish_session(
                    self.session_id,
                    reason=reason,
                    events_sent=delivered,
                    last_event_id=last_id,
                    error=error,
                    first_event_ms=self.observed.first_event_ms,
                )
            )
            await free_thread(self.hold)  # before the readers see the end: the next one may run
        except Exception as exc:
            # The stream still ends for its readers; the stale-session sweep ends the row.
            logger.error("Stream %s: could not record its end (%s)", self.session_id, exc)
        finally:  # Cancelled or not, the readers learn the end (else they would ping forever).
            if frame is not None:
                self._append(final_event(frame, self.thread_id if self.kind == Kind.CHAT else None))
            self.log.close(reason)
            self.observed.ended(reason, delivered)
            await free_thread(self.hold)  # if the write failed or was cancelled (once only)
            webhooks.run_ended(self.session_id)  # in the background, once the row is final
        if self._mirror is not None:
            await records.survive_cancel(self._mirror.close(reason))
        if self._subscription is not None:
            await records.survive_cancel(self._subscription.leave())

    async def _wait_finished(self) -> None:
        assert self._task is not None
        done, _ = await asyncio.wait({self._task}, timeout=conf.cancel_grace_seconds)
        if not done:
            grace = conf.cancel_grace_seconds
            logger.warning("Stream %s did not finish %.1f s after a stop", self.session_id, grace)
