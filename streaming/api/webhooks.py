"""Completion webhooks' contract: their secret, their Standard Webhooks signature, their URLs.

The signature is the spec's `v1` scheme (https://www.standardwebhooks.com): HMAC-SHA256,
keyed by the secret's bytes, of `{webhook-id}.{webhook-timestamp}.{body}`, base64-encoded.
A few lines of `hmac` rather than a dependency; the tests verify it with the spec's own
Python package, an implementation independent of this one. Free of models: the system
checks use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
# The spec's recommended range of a secret's length.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
SCHEMES = ("http", "https")


def decode_secret(secret: str) -> bytes:
    """Return the key of a `whsec_<base64>` secret; raise ValueError for a malformed one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"it does not start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(f"what follows {SECRET_PREFIX!r} is not base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"it holds {len(key)} bytes, not {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}")
    return key


def signature(key: bytes, *, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header of `body` sent as `webhook_id` at `timestamp`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def http_url_problem(url: str) -> str | None:
    """Return why `url` cannot be a webhook's target (not http(s), or no host), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in SCHEMES:
        return "the scheme must be http or https"
    if not host:
        return "it names no host"
    return None
