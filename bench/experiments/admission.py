"""CPU of one admission in process (no server, no client): request → row → first byte → end.

    bash -c 'source bench/sut.sh && env "${SUT_ENV[@]}" taskset -c 0 \\
        .venv/bin/python -m bench.experiments.admission'

Drives `project.asgi:application` with an in-memory ASGI request for `POST
/api/chat/stream` (the synthetic source, 3 events, no delay) until its body ends, in rounds
that alternate between variants (`VARIANTS`, comma-separated; default both):

- `reused`: production, the request's sync calls in a reused thread
  (transports/request_threads.py);
- `per-request`: that wrapper off, so Django's handler starts and joins a thread per
  request, as before;
- `csrf-hop`: production, but with CSRF's view check sent to the request's thread for
  every view, as Django's own handler does (`transports/middleware.py`).

Prints the process CPU (all threads) per request for each round, and the medians.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

BODY = json.dumps({"messages": [{"role": "user", "content": "bench"}], "n": 3}).encode()
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/api/chat/stream",
    "raw_path": b"/api/chat/stream",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def one(app: Any) -> int:
    """Serve one request; return the response's status."""
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": BODY, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(dict(SCOPE), receive, send)
    return int(sent[0]["status"])


@contextlib.asynccontextmanager
async def no_reuse() -> AsyncIterator[None]:
    yield


async def main() -> None:
    from django.core.handlers.base import BaseHandler

    from project.asgi import application, django_asgi_app
    from streaming.transports import handoff, request_threads

    variants = os.environ.get("VARIANTS", "reused,per-request").split(",")
    per_round = int(os.environ.get("REQUESTS", "300"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    results: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(30):  # warm up: imports, caches, the records thread
        assert await one(application) == 200
    for r in range(rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            handoff.request_thread = (  # type: ignore[attr-defined]
                no_reuse if v == "per-request" else request_threads.request_thread
            )
            if v == "csrf-hop":  # Django's adaptation of the view hooks, for this round
                django_asgi_app.adapt_method_mode = BaseHandler.adapt_method_mode.__get__(
                    django_asgi_app
                )
            else:
                vars(django_asgi_app).pop("adapt_method_mode", None)
            django_asgi_app.load_middleware(is_async=True)
            started_threads = threading.active_count()
            t0 = time.process_time()
            for _ in range(per_round):
                assert await one(application) == 200
            cpu = (time.process_time() - t0) / per_round * 1e6
            results[v].append(cpu)
            print(f"round {r + 1} {v}: {cpu:,.0f} µs CPU/request (threads {started_threads})")
    for v, xs in results.items():
        print(f"median {v}: {statistics.median(xs):,.0f} µs CPU/request")


if __name__ == "__main__":
    import django

    django.setup()
    asyncio.run(main())
