"""Who may use the API: the optional bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from streaming.api.errors import Refusal
from streaming.conf import conf

# The header a 401 carries: how to authenticate.
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_is_valid(authorization: str) -> bool:
    """Return whether an `Authorization` header value carries the configured token."""
    return bearer_matches(authorization, conf.api_token)


def bearer_matches(authorization: str, expected: str) -> bool:
    """Return whether `authorization` is `Bearer <expected>`, or nothing is expected."""
    if not expected:
        return True
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def require_token(headers: Mapping[str, str]) -> None:
    """Raise 401 unless the request carries the configured token (when one is set)."""
    if not token_is_valid(headers.get("Authorization", "")):
        raise Refusal.BAD_TOKEN.error(CHALLENGE)
