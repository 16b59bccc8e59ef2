"""Which worker process this is, as session rows and the live panel name it."""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    """Return `host:pid` of this process (a forked worker gets its own), at most 100 chars."""
    return f"{socket.gethostname()[:88]}:{os.getpid()}"
