"""A request's sync code runs in one thread of its own, which a later request reuses.

Django's `request_started` and `request_finished` receivers are sync, so Django runs them in
the request's thread-sensitive thread: where they run is where the request's sync code
runs. The application is driven in process through `project.asgi`, as a server would.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import types
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext
from django.core.signals import request_finished, request_started

from project.asgi import application
from streaming.runs.registry import live_runs
from tests.support.asgi import post_json
from tests.support.sources import Probe

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def get_healthz() -> int:
    """Serve one GET /healthz through the whole ASGI stack; return its status."""
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await application(dict(SCOPE), receive, send)
    return int(sent[0]["status"])


@pytest.mark.django_db(transaction=True)
async def test_sync_code_of_a_request_runs_in_one_reused_thread() -> None:
    seen: list[tuple[str, threading.Thread]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.current_thread()))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.current_thread()))

    request_started.connect(started, dispatch_uid="test-request-threads-started")
    request_finished.connect(finished, dispatch_uid="test-request-threads-finished")
    try:
        assert await get_healthz() == 200
        assert await get_healthz() == 200
    finally:
        request_started.disconnect(dispatch_uid="test-request-threads-started")
        request_finished.disconnect(dispatch_uid="test-request-threads-finished")

    assert [name for name, _ in seen] == ["started", "finished", "started", "finished"]
    first, second = seen[0][1], seen[2][1]
    # Thread objects, not idents: the kernel reuses the ident of a thread that has exited.
    assert first is not threading.current_thread()  # not the event loop's thread
    assert seen[1][1] is first  # one thread for all of the first request's sync code
    assert seen[3][1] is second
    assert second is first  # the second request reused it: no thread started per request


def reaches_a_request_context(root: object) -> bool:
    """Whether a request's thread-sensitive context is reachable from `root`.

    Walks what `root` references, but not through the event loop (every timer and socket of
    the process hangs off it), classes, modules or functions' globals (a function counts
    only by its closure).
    """
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (asyncio.AbstractEventLoop, type, types.ModuleType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, ThreadSensitiveContext):
            return True
        if isinstance(obj, types.FunctionType):
            todo.extend(obj.__closure__ or ())
            continue
        todo.extend(gc.get_referents(obj))
    return False


@pytest.mark.django_db(transaction=True)
async def test_live_streams_keep_nothing_of_their_requests_thread(probe: Probe, use_source) -> None:
    # Each request's thread-sensitive context leads to its thread's executor, the thread and
    # asgiref's locals: a stream that kept it (a timer made in the request's context did)
    # would hold them, and the collector would walk them, for as long as the stream lives.
    use_source("IdleSource")
    live = [await post_json("/api/chat/stream", {}) for _ in range(3)]
    assert [exchange.status for exchange in live] == [200, 200, 200]
    for exchange in live:  # sent once Django's handler has returned, its context exited
        assert await exchange.read_chunk() == b": stream open\n\n"
    runs = list(live_runs().runs.values())
    kept = [run.session_id for run in runs if reaches_a_request_context(run)]
    probe.gate.set()
    for exchange in live:
        await exchange.read_all()
    assert len(runs) == 3
    assert kept == []
