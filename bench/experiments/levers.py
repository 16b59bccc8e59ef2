"""Benchmark experiments only: levers outside the hot-path files, switched by BENCH_EXP_*.

Never used in production. `bench/levers.sh` serves `bench.experiments.levers:application`
to measure what each lever would buy before anyone changes the project for it:

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
from typing import Any

from project.asgi import application as project_application
from streaming.api.bodies import validate
from streaming.api.clients import ClientInfo
from streaming.api.requests import ChatRequest
from streaming.models import Transport
from streaming.runs.opening import open_chat_stream
from streaming.transports import sse

Scope = dict[str, Any]


async def _chat_stream(scope: Scope, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    chat = validate(ChatRequest, json.loads(body or b"{}"))
    client = ClientInfo.from_scope(scope)
    run = await open_chat_stream(chat, transport=Transport.SSE, client=client)
    headers = sse.stream_headers(str(run.session_id)).items()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
    )

    async def pump() -> None:
        async with contextlib.aclosing(sse.event_stream(run, tags=run.tags)) as chunks:
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
if os.environ.get("BENCH_EXP_FAST_PATH"):
    application = _fast_path
if os.environ.get("BENCH_EXP_GC_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["BENCH_EXP_GC_THRESHOLD"].split(",")))
