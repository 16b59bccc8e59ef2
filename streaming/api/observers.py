"""Observer links: signed, expiring, read-only links to one session's stream.

The link is its own credential, so it works in a plain `EventSource` (which sends no
headers). It names one session (the session id is the signature's salt) and an expiry, and
only the observe endpoint reads it: nothing that changes a stream accepts it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.utils import timezone

from streaming.api.errors import Refusal
from streaming.conf import conf

SALT = "streaming.observer"


def _salt(session_id: uuid.UUID) -> str:
    return f"{SALT}:{session_id}"


def make_link(session_id: uuid.UUID) -> tuple[str, datetime]:
    """Return a new link's token for `session_id`, and when it expires."""
    expires_at = timezone.now() + timedelta(seconds=conf.observer_link_seconds)
    token = signing.dumps({"e": int(expires_at.timestamp())}, salt=_salt(session_id))
    return token, expires_at.replace(microsecond=0)


def check_link(session_id: uuid.UUID, token: str) -> None:
    """Raise 401 unless `token` is a link to `session_id` signed here, 410 once it expired."""
    try:
        payload = signing.loads(token, salt=_salt(session_id))
        expires = datetime.fromtimestamp(int(payload["e"]), tz=UTC)
    except (signing.BadSignature, KeyError, TypeError, ValueError, OverflowError):
        raise Refusal.LINK_INVALID.error() from None
    if timezone.now() >= expires:
        raise Refusal.LINK_EXPIRED.error()
