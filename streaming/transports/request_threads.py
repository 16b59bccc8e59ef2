"""The thread a request's sync code runs in: reused from a few kept idle, not one per request.

Django's ASGI handler enters asgiref's `ThreadSensitiveContext` for each request, and that
context starts a new single-thread executor on its first thread-sensitive sync call (the
`close_old_connections` receiver, the sync middleware) and joins it at the end: an OS
thread started, and joined from yet another thread, for every request. Measured with
py-spy on S4 (`bench/profile.sh`), starting and joining them was about a quarter of the CPU
an admission costs.

`request_thread` enters that context first, with asgiref's own option for it
(`ThreadSensitiveContext(executor=...)`: the caller owns the executor); Django's handler
then finds a context already entered and uses it. Each request still has one thread to
itself for all of its sync code, for as long as its handler runs; only the thread is
reused by a later request. An executor comes from the idle ones or is made, so a burst of
concurrent requests is never made to wait for one; at most `KEEP_IDLE` are kept between
requests. A request that ends abnormally (cancelled, raised) may leave its sync call
running, so its executor is never reused: it is shut down as Django's would be.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext

KEEP_IDLE = 8

_idle: list[ThreadPoolExecutor] = []


def _lease() -> ThreadPoolExecutor:
    if _idle:
        return _idle.pop()
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")


def _give_back(executor: ThreadPoolExecutor, *, reusable: bool) -> None:
    if reusable and len(_idle) < KEEP_IDLE:
        _idle.append(executor)
        return
    # Joined off the event loop: its worker may itself be waiting for the loop.
    threading.Thread(target=executor.shutdown, daemon=True).start()


@contextlib.asynccontextmanager
async def request_thread() -> AsyncIterator[None]:
    """Run the block's thread-sensitive sync calls in one reused thread of their own."""
    executor = _lease()
    reusable = False
    try:
        async with ThreadSensitiveContext(executor=executor):
            yield
        reusable = True
    finally:
        _give_back(executor, reusable=reusable)
