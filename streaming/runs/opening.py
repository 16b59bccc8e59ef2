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
from streaming.conf import conf
from streaming.models import EndReason, Kind, Status, Transport
from streaming.observe import metrics
from streaming.runs import redislog, shutdown, webhooks
from streaming.runs.eventlog import EventLogExpiredError
from streaming.runs.readers import Followable
from streaming.runs.registry import live_runs
from streaming.runs.run import StreamRun
from streaming.sources import chat_source, prose_source
from streaming.sources.base import Event

logger = logging.getLogger(__name__)


async def open_chat_stream(
    request: ChatRequest, *, transport: Transport, client: ClientInfo
) -> StreamRun:
    """Record a new chat stream and return its started run (403 for MCP when disabled)."""
    if request.mcp_settings and not conf.enable_mcp:
        raise Refusal.MCP_DISABLED.error()
    thread_id = request.resolved_thread_id()
    source = chat_source(conf.chat_source)
    return await _open(
        Kind.CHAT,
        request,
        thread_id,
        lambda: source.stream(request, thread_id=thread_id),
        source_name=conf.chat_source,
        transport=transport,
        client=client,
    )


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
    metrics.RESUMES.labels("replayed").inc()
    return found


async def _find_resume(session_id: uuid.UUID, *, after: int) -> Followable:
    """Return where to read `session_id` from after event `after`, or raise 404/410.

    The live run if it runs here, its kept log if it ended here, else its log in Redis
    (also while a run on another worker has yet to write its first events there).
    """
    registry = live_runs()
    redis_client = redislog.client()
    in_redis = None if redis_client is None else redislog.RedisLogReader(redis_client, session_id)
    try:
        if (run := registry.runs.get(session_id)) is not None:
            run.log.check(after)
            return run
        if (log := registry.retained(session_id)) is not None:
            log.check(after)
            return log
        if in_redis is not None and await in_redis.exists():
            await in_redis.check(after)
            return in_redis
    except EventLogExpiredError as exc:
        raise ApiError(410, str(exc)) from None
    session = await records.get_session(session_id)
    if session is None:
        raise Refusal.NO_SESSION.error()
    if in_redis is not None and session.status == Status.RUNNING:
        # Live on another worker whose mirror has not written its first events yet:
        # follow it in Redis from the start (the read waits for them).
        return in_redis
    raise Refusal.NOT_KEPT.error()


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
) -> StreamRun:
    """Admit the stream, record it, and start its run (503 if the database or the channel
    layer fails meanwhile: the request gets an answer, never a bare 500)."""
    webhook = webhooks.allowed_target(request.webhook)  # 422 before anything opens
    _admit(client)
    registry = live_runs()
    registry.opening += 1
    registry.per_client[client.limit_key] += 1  # held while opening; the run holds its own
    try:
        on_disconnect = conf.on_disconnect  # read before the row exists: a bad value opens none
        session_id = await records.open_session(
            kind=kind,
            transport=transport,
            thread_id=thread_id,
            source=source_name,
            request_params=request.model_dump(mode="json"),
            client_address=client.address,
            user_agent=client.user_agent,
            owner_id=client.user_id,
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
        )
        try:
            await run.start()
        except BaseException:
            # The row exists: end it (the source never ran) rather than leave it running.
            await run.stop(EndReason.ERROR)
            raise
        return run
    except Exception as exc:
        logger.error("Could not open a %s stream: %s", kind, exc, exc_info=exc)
        raise Refusal.CANNOT_OPEN.error() from exc
    finally:
        registry.opening -= 1
        registry.per_client[client.limit_key] -= 1
