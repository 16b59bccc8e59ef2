"""What the OpenAPI document says of access, by STREAM_AUTH: schemes, requirements, refusals.

`open` asks for nothing; `token` for the shared bearer token; `users` for a personal token
or Django's session cookie, whose unsafe requests also need the CSRF header.
"""

from __future__ import annotations

from typing import Any

from streaming.api.errors import Refusal
from streaming.conf import AuthMode
from streaming.transports.openapi_events import Schema

BEARER: Schema = {
    "type": "http",
    "scheme": "bearer",
    "description": "The shared STREAM_API_TOKEN.",
}
PERSONAL_BEARER: Schema = {
    "type": "http",
    "scheme": "bearer",
    "description": "A personal API token (`manage.py create_api_token <username>`, or the "
    "admin's API tokens).",
}
COOKIE: Schema = {
    "type": "apiKey",
    "in": "cookie",
    "name": "sessionid",
    "description": "Django's session cookie, from `/login/` or the admin's login. Unsafe "
    "methods also need the `X-CSRFToken` header (the `csrftoken` cookie's value) and, when "
    "an `Origin` is sent, this site's own.",
}


def security_schemes(mode: AuthMode) -> dict[str, Schema]:
    """Return the document's security schemes in `mode`."""
    if mode == "token":
        return {"bearerAuth": BEARER}
    if mode == "users":
        return {"bearerAuth": PERSONAL_BEARER, "cookieAuth": COOKIE}
    return {}


def guarded(mode: AuthMode) -> dict[str, Any]:
    """Return the `security` of an operation that needs a caller in `mode` (either scheme)."""
    schemes = list(security_schemes(mode))
    if not schemes:
        return {}
    return {"security": [{name: []} for name in schemes]}


def access_refusals(mode: AuthMode, *, unsafe: bool = False) -> tuple[Refusal, ...]:
    """Return how an operation that needs a caller refuses one in `mode`."""
    if mode == "token":
        return (Refusal.BAD_TOKEN,)
    if mode == "users":
        csrf = (Refusal.CSRF_FAILED,) if unsafe else ()
        return (Refusal.BAD_TOKEN, Refusal.SIGN_IN, *csrf)
    return ()
