"""Users for the `users` access mode: accounts, session cookies, personal API tokens."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User
from django.test import Client

from streaming.models import ApiToken

PASSWORD = "a-long-test-password-42"


def make_user(username: str, *, staff: bool = False, manage_all: bool = False) -> User:
    """Create a user (staff with the permission to see every session, if asked)."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff)
    if manage_all:
        user.user_permissions.add(Permission.objects.get(codename="manage_all_sessions"))
    return user


def cookie_of(user: User) -> str:
    """Return a `Cookie` header that signs `user` in (Django's session cookie)."""
    client = Client()
    client.force_login(user)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())


def signed_in_cookie(username: str = "cookie-user") -> str:
    """Create a user and return a `Cookie` header that signs them in."""
    return cookie_of(make_user(username))


def make_token(user: User, name: str = "test") -> str:
    """Create a personal API token for `user` and return its secret."""
    token = ApiToken(user=user, name=name)
    raw = token.generate()
    token.save()
    return raw
