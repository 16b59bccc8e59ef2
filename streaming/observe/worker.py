"""Which worker process this is, as session rows and the live panel name it."""

from __future__ import annotations

import functools
import os
import socket


def worker_id() -> str:
    """Return `host:pid` of this process (a forked worker gets its own), at most 100 chars."""
    return _worker_id(os.getpid())


@functools.cache
def _worker_id(pid: int) -> str:
    return f"{socket.gethostname()[:88]}:{pid}"
