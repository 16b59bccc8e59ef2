"""Benchmark experiments only: levers outside the hot-path files, switched by BENCH_EXP_*.

Never used in production. `bench/levers.sh` serves `bench.experiments.levers:application`
to measure what each lever would buy before anyone changes the project for it:

- BENCH_EXP_RAW_RECORDS=1   session rows written with one raw SQL statement each (SQLite)
                            instead of the ORM's create() / filter().update()
- BENCH_EXP_GC_FREEZE=1     gc.freeze() once the app is loaded
- BENCH_EXP_GC_THRESHOLD=a,b,c  gc.set_threshold(a, b, c)
- BENCH_EXP_FAST_PATH=1     POST /api/chat/stream served straight from ASGI: the same
                            guard, run, event log and SSE encoding, but not Django's request
                            handler (no middleware, no per-request thread)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import uuid
from typing import Any

from project.asgi import application as project_application
from streaming import records, sse
from streaming.guard import ClientInfo, StreamGuardMixin
from streaming.models import EndReason, Transport
from streaming.payloads import validate
from streaming.schemas import ChatRequest
from streaming.views import _sse_body

Scope = dict[str, Any]


def _raw_records() -> None:
    from django.db import connection
    from django.utils import timezone

    def now() -> Any:
        return connection.ops.adapt_datetimefield_value(timezone.now())

    @records.in_records_thread
    def open_session(**row: Any) -> uuid.UUID:
        session_id, ts = uuid.uuid4(), now()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO streaming_streamsession (id, kind, transport, thread_id, status,"
                " end_reason, started_at, ended_at, heartbeat_at, events_sent, last_event_id,"
                " source, request_params, client_address, user_agent, error) VALUES"
                " (%s, %s, %s, %s, 'running', '', %s, NULL, %s, 0, 0, %s, %s, %s, %s, '')",
                [
                    session_id.hex, row["kind"], row["transport"], row["thread_id"], ts, ts,
                    row["source"], json.dumps(row["request_params"]), row["client_address"],
                    row["user_agent"][:512],
                ],
            )  # fmt: skip
        return session_id

    @records.in_records_thread
    def finish_session(
        session_id: uuid.UUID,
        *,
        reason: EndReason,
        events_sent: int,
        last_event_id: int,
        error: str = "",
    ) -> bool:
        ts = now()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE streaming_streamsession SET status = %s, end_reason = %s, ended_at = %s,"
                " heartbeat_at = %s, events_sent = %s, last_event_id = %s, error = %s"
                " WHERE id = %s AND status = 'running'",
                [reason.status, reason, ts, ts, events_sent, last_event_id, error,
                 session_id.hex],
            )  # fmt: skip
            return bool(cursor.rowcount == 1)

    records.open_session = open_session  # type: ignore[assignment]
    records.finish_session = finish_session  # type: ignore[assignment]


async def _chat_stream(scope: Scope, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    chat = validate(ChatRequest, json.loads(body or b"{}"))
    agent = dict(scope["headers"]).get(b"user-agent", b"").decode()
    client = ClientInfo(address=scope["client"][0], user_agent=agent)
    run = await StreamGuardMixin().open_chat_stream(chat, transport=Transport.SSE, client=client)
    headers = sse.stream_headers(str(run.session_id)).items()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
    )

    async def pump() -> None:
        async with contextlib.aclosing(_sse_body(run, 0)) as chunks:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch(task: asyncio.Task[None]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        task.cancel()

    task = asyncio.create_task(pump())
    watcher = asyncio.create_task(watch(task))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        watcher.cancel()


async def _fast_path(scope: Scope, receive: Any, send: Any) -> None:
    stream = scope["type"] == "http" and scope["path"] == "/api/chat/stream"
    if stream and scope["method"] == "POST":
        await _chat_stream(scope, receive, send)
    else:
        await project_application(scope, receive, send)


application: Any = project_application
if os.environ.get("BENCH_EXP_RAW_RECORDS"):
    _raw_records()
if os.environ.get("BENCH_EXP_FAST_PATH"):
    application = _fast_path
if os.environ.get("BENCH_EXP_GC_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["BENCH_EXP_GC_THRESHOLD"].split(",")))
if os.environ.get("BENCH_EXP_GC_FREEZE"):
    gc.collect()
    gc.freeze()
