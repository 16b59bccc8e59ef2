"""Opening a stream: admission, the session record and the started run, or a resume.

The one entry point of both transports: `open_chat_stream` and `open_prose_stream` admit
a request, record its session and start its run; `open_resume` finds where a session's
events can be read from. What a run does until it ends is in `run.py`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable

from streaming import records
from streaming.api.clients import ClientInfo
from streaming.api.errors import ApiError, Refusal
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.conf import MultitaskStrategy, conf
from streaming.models import EndReason, Kind, Transport
from streaming.observe import metrics
from streaming.runs import redislog, shutdown, webhooks
from streaming.runs.endings import LIVE_STATUSES
from streaming.runs.eventlog import EventLogExpiredError
from streaming.runs.readers import Followable
from streaming.runs.registry import live_runs
from streaming.runs.run import StreamRun
from streaming.runs.snapshot import RunSnapshot, SnapshotResume
from streaming.runs.threads import ThreadHold, admit_to_thread, thread_key
from streaming.sources import chat_source, prose_source
from streaming.sources.base import Event

logger = logging.getLogger(__name__)


async def open_chat_stream(
    request: ChatRequest, *, transport: Transport, client: ClientInfo
) -> StreamRun:
    """Record a new chat stream and return its started run (403 for MCP when disabled;
    409 or 503 when its thread is held, per its multitask strategy)."""
    if request.mcp_settings and not conf.enable_mcp:
        raise Refusal.MCP_DISABLED.error()
    thread_id = request.resolved_thread_id()
    source = chat_source(conf.chat_source)
    hold = ThreadHold(thread_key(client.user_id, thread_id), uuid.uuid4())
    try:
        return await _open(
            Kind.CHAT,
            request,
            thread_id,
            lambda: source.stream(request, thread_id=thread_id),
            source_name=conf.chat_source,
            transport=transport,
            client=client,
            hold=hold,
            strategy=request.multitask_strategy or conf.multitask_strategy,
        )
    except BaseException:  # refused, failed, or its client left while it waited
        await records.survive_cancel(hold.release())
        raise


async def open_prose_stream(
    request: ProseRequest, *, transport: Transport, client: ClientInfo
) -> StreamRun:
    """Record a new prose stream and return its started run."""
    source = prose_source(conf.prose_source)
    return await _open(
        Kind.PROSE,
        request,
        "",
        lambda: source.stream(request),
        source_name=conf.prose_source,
        transport=transport,
        client=client,
    )


async def open_resume(session_id: uuid.UUID, *, after: int) -> Followable:
    """Return where to read `session_id` from after event `after`, or raise 404/410."""
    try:
        found = await _find_resume(session_id, after=after)
    except ApiError:
        metrics.RESUMES.labels("refused").inc()
        raise
    metrics.RESUMES.labels("snapshot" if isinstance(found, SnapshotResume) else "replayed").inc()
    return found


async def _find_resume(session_id: uuid.UUID, *, after: int) -> Followable:
    """Return where to read `session_id` from after event `after`, or raise 404/410.

    The live run if it runs here, its kept log if it ended here, else its log in Redis
    (also while a run on another worker has yet to write its first events there). Where
    the events after `after` were dropped, the run's merged state answers, then the
    events after it (snapshot.py); 410 where that is gone too.
    """
    registry = live_runs()
    redis_client = redislog.client()
    in_redis = None if redis_client is None else redislog.RedisLogReader(redis_client, session_id)
    run = registry.runs.get(session_id)
    log = run.log if run is not None else registry.retained(session_id)
    try:
        if log is not None:
            stream: Followable = run if run is not None else log
            try:
                log.check(after)
            except EventLogExpiredError:
                # Compacted when the reader attaches: the log may drop more until then.
                kept = log
                return SnapshotResume(
                    stream, log.snapshot, after=after, first_kept=lambda: kept.first_kept
                )
            return stream
        if in_redis is not None and await in_redis.exists():
            try:
                await in_redis.check(after)
            except EventLogExpiredError as exc:
                return _from_snapshot(in_redis, await in_redis.snapshot(), after, exc)
            return in_redis
    except EventLogExpiredError as exc:
        raise ApiError(410, str(exc)) from None
    session = await records.get_session(session_id)
    if session is None:
        raise Refusal.NO_SESSION.error()
    if in_redis is not None and session.status in LIVE_STATUSES:
        # Live on another worker whose mirror has not written its first events yet:
        # follow it in Redis from the start (the read waits for them).
        return in_redis
    raise Refusal.NOT_KEPT.error()


def _from_snapshot(
    stream: Followable, snapshot: RunSnapshot | None, after: int, gone: EventLogExpiredError
) -> SnapshotResume:
    """Answer a resume from a state kept in Redis, or raise `gone` if it misses the events
    kept there."""
    if snapshot is None or snapshot.last_id < gone.first_kept - 1:
        raise gone
    return SnapshotResume(stream, snapshot, after=after, first_kept=lambda: gone.first_kept)


def _admit(client: ClientInfo) -> None:
    """Refuse a new stream while the server shuts down, or when this worker or this client
    (its user, else its address) has too many (never a hang)."""
    registry = live_runs()
    if shutdown.in_progress():
        # The live runs were stopped already; a new one would hold the process up.
        raise Refusal.SHUTTING_DOWN.error()
    if len(registry.runs) + registry.opening >= conf.max_streams:
        raise Refusal.AT_LIMIT.error()
    if registry.per_client[client.limit_key] >= conf.max_streams_per_client:
        raise Refusal.CLIENT_AT_LIMIT.error()


async def _open(
    kind: Kind,
    request: ChatRequest | ProseRequest,
    thread_id: str,
    events: Callable[[], AsyncGenerator[Event, None]],
    *,
    source_name: str,
    transport: Transport,
    client: ClientInfo,
    hold: ThreadHold | None = None,
    strategy: MultitaskStrategy = "interrupt",
) -> StreamRun:
    """Admit the stream (and to its thread: `hold`, by `strategy`), record it, and start its
    run (503 if the database or the channel layer fails meanwhile: the request gets an
    answer, never a bare 500)."""
    webhook = webhooks.allowed_target(request.webhook)  # 422 before anything opens
    _admit(client)
    registry = live_runs()
    registry.opening += 1
    registry.per_client[client.limit_key] += 1  # held while opening; the run holds its own
    try:
        # Read before the row exists: a bad setting opens none.
        on_disconnect = request.on_disconnect or conf.on_disconnect
        policy: dict[str, str] = {"on_disconnect": on_disconnect}
        queued = False
        if hold is not None:
            policy["multitask_strategy"] = strategy
            queued = await admit_to_thread(hold, strategy)
        session_id = await records.open_session(
            kind=kind,
            transport=transport,
            thread_id=thread_id,
            source=source_name,
            request_params=request.model_dump(mode="json") | policy,
            client_address=client.address,
            user_agent=client.user_agent,
            owner_id=client.user_id,
            session_id=hold.session_id if hold is not None else None,
            queued=queued,
        )
        webhooks.expect(session_id, webhook)
        run = StreamRun(
            session_id=session_id,
            kind=kind,
            thread_id=thread_id,
            events=events(),
            limit_key=client.limit_key,
            on_disconnect=on_disconnect,
            transport=str(transport),
            source=source_name,
            hold=hold,
        )
        try:
            await run.start()
        except BaseException:
            # The row exists: end it (the source never ran) rather than leave it running.
            await run.stop(EndReason.ERROR)
            raise
        return run
    except ApiError:  # refused for its thread
        raise
    except Exception as exc:
        logger.error("Could not open a %s stream: %s", kind, exc, exc_info=exc)
        raise Refusal.CANNOT_OPEN.error() from exc
    finally:
        registry.opening -= 1
        registry.per_client[client.limit_key] -= 1
