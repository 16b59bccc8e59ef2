"""Query parameters of the session endpoints: a listing's `limit`, a cancel's `wait`."""

from __future__ import annotations

import re

from streaming.api.errors import Refusal

DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # Refusal.BAD_LIMIT's text says so
# A cancelled run records its end within STREAM_CANCEL_GRACE_SECONDS (5 s by default); a
# longer wait only holds a request open.
MAX_WAIT_SECONDS = 60.0  # Refusal.BAD_WAIT's text says so

_INTEGER = re.compile(r"[0-9]{1,6}")


def parse_limit(raw: str | None) -> int:
    """Return `limit` (absent: the default), or raise 422 unless it is 1 to MAX_LIMIT."""
    if raw is None:
        return DEFAULT_LIMIT
    if not _INTEGER.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise Refusal.BAD_LIMIT.error()
    return int(raw)


def parse_wait(raw: str | None) -> float | None:
    """Return `wait` in seconds (absent: None), or raise 422 unless it is 0 to MAX_WAIT_SECONDS."""
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise Refusal.BAD_WAIT.error() from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN is refused too
        raise Refusal.BAD_WAIT.error()
    return seconds
