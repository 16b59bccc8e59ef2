"""Who may use the API, by STREAM_AUTH: anyone, the shared token, or Django's users.

`open`: no checks. `token`: the shared bearer token (STREAM_API_TOKEN). `users`: a
personal API token (`Authorization: Bearer`, or `?token=` on a WebSocket), else Django's
session cookie, whose unsafe requests must pass Django's CSRF check. A user reads, follows,
resumes and cancels only their own sessions; staff with `streaming.manage_all_sessions`
all of them. Anyone else is told the session does not exist.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, PermissionsMixin
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone

from streaming import records
from streaming.api.errors import ApiError, Refusal
from streaming.conf import conf
from streaming.models import MANAGE_ALL, ApiToken, StreamSession

# The header a 401 carries: how to authenticate.
CHALLENGE = {"WWW-Authenticate": "Bearer"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PERMISSION = f"streaming.{MANAGE_ALL}"
# How fresh a token's last use is kept: the admin shows the minute, not every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends a request: a user (`users` mode), or anyone (the other modes)."""

    user_id: int | None = None
    username: str = ""
    sees_all: bool = True  # every session: the open and token modes, and permitted staff

    def may_see(self, session: StreamSession) -> bool:
        """Return whether this caller may read, follow, resume and cancel `session`."""
        return self.sees_all or (self.user_id is not None and session.owner_id == self.user_id)


ANYONE = Caller()


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


async def authenticate(request: HttpRequest) -> Caller:
    """Return who sends an HTTP request, or raise 401 (or 403: a cookie without CSRF)."""
    mode = conf.access_mode
    if mode == "open":
        return ANYONE
    if mode == "token":
        require_token(request.headers)
        return ANYONE
    if authorization := request.headers.get("Authorization", ""):
        return await _by_token(authorization)
    user = await request.auser()
    if not user.is_authenticated:
        raise Refusal.SIGN_IN.error(CHALLENGE)
    if request.method not in SAFE_METHODS:
        _check_csrf(request)
    return await _caller(user)


async def authenticate_socket(scope: Mapping[str, Any], authorization: str) -> Caller | None:
    """Return who opens a WebSocket (token, else the session cookie's user), or None."""
    mode = conf.access_mode
    if mode != "users":
        return ANYONE if mode == "open" or token_is_valid(authorization) else None
    if authorization:
        try:
            return await _by_token(authorization)
        except ApiError:
            return None
    user = scope.get("user") or AnonymousUser()
    return await _caller(user) if user.is_authenticated else None


async def session_for(caller: Caller, session_id: uuid.UUID) -> StreamSession:
    """Return the session `caller` may see, or raise 404 as for one that does not exist."""
    session = await records.get_session(session_id)
    if session is None or not caller.may_see(session):
        raise Refusal.NO_SESSION.error()
    return session


async def thread_sessions_for(caller: Caller, thread_id: str, *, limit: int) -> list[StreamSession]:
    """Return the sessions of a thread that `caller` may see, newest first, at most `limit`."""
    if caller.sees_all:
        return await records.thread_sessions(thread_id, owner_id=None, limit=limit)
    if caller.user_id is None:  # pragma: no cover - a caller who sees some has a user
        return []
    return await records.thread_sessions(thread_id, owner_id=caller.user_id, limit=limit)


async def require_session(caller: Caller, session_id: uuid.UUID) -> None:
    """Raise 404 unless `caller` may reach the session (no lookup for those who reach all)."""
    if not caller.sees_all:
        await session_for(caller, session_id)


async def _by_token(authorization: str) -> Caller:
    """Return the owner of a personal API token; 401 for an unknown or revoked one."""
    scheme, _, raw = authorization.partition(" ")
    token = None
    if scheme.lower() == "bearer" and raw.strip():
        token = await (
            ApiToken.objects.select_related("user")
            .filter(key_hash=ApiToken.hash(raw.strip()), revoked_at__isnull=True)
            .afirst()
        )
    if token is None or not token.user.is_active:
        raise Refusal.BAD_TOKEN.error(CHALLENGE)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Written at most once a minute per token: not a row write on every request.
        await ApiToken.objects.filter(pk=token.pk).aupdate(last_used_at=now)
    return await _caller(token.user)


async def _caller(user: AbstractBaseUser | AnonymousUser) -> Caller:
    staff = bool(getattr(user, "is_staff", False))
    permitted = isinstance(user, PermissionsMixin) and await user.ahas_perm(PERMISSION)
    sees_all = staff and permitted
    return Caller(user_id=user.pk, username=user.get_username(), sees_all=sees_all)


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering a failure in the API's shape."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise Refusal.CSRF_FAILED.error()


def _check_csrf(request: HttpRequest) -> None:
    """Raise 403 unless a cookie-authenticated unsafe request passes Django's CSRF check."""
    _CsrfCheck(_unused).process_view(request, _unused, (), {})


def _unused(request: HttpRequest) -> HttpResponse:
    """Stand in for the view and the rest of the chain, which the check never calls."""
    raise NotImplementedError
