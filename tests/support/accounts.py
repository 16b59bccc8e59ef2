"""Accounts on a live server (STREAM_AUTH=users): users, tokens, sign-ins."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from tests.support.live import ROOT

PASSWORD = "a-long-test-password-42"
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def manage(env: dict[str, str], *args: str) -> str:
    """Run `manage.py` with the server's environment; return what it printed."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def create_user(env: dict[str, str], username: str, *, manage_all: bool = False) -> None:
    """Create a user (staff allowed to see every session, with `manage_all`)."""
    code = (
        "from django.contrib.auth.models import Permission, User\n"
        f"user = User.objects.create_user({username!r}, password={PASSWORD!r}, "
        f"is_staff={manage_all!r})\n"
        f"if {manage_all!r}:\n"
        "    user.user_permissions.add(Permission.objects.get(codename='manage_all_sessions'))\n"
    )
    manage(env, "shell", "-c", code)


def create_token(env: dict[str, str], username: str) -> str:
    """Return a new personal API token, from the last line `create_api_token` prints."""
    return manage(env, "create_api_token", username).splitlines()[-1]


def revoke_tokens(env: dict[str, str], username: str) -> None:
    """Revoke every token of `username`, as the admin's action does."""
    code = (
        "from django.utils import timezone\n"
        "from streaming.models import ApiToken\n"
        f"ApiToken.objects.filter(user__username={username!r}).update(revoked_at=timezone.now())\n"
    )
    manage(env, "shell", "-c", code)


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    """Sign `client` in through the login page (it then holds the session and CSRF cookies)."""
    page = await client.get("/login/")
    match = _CSRF_FIELD.search(page.text)
    assert match, page.text
    form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": match[1]}
    answer = await client.post("/login/", data={**form, "next": "/"})
    assert (answer.status_code, answer.headers.get("location")) == (302, "/"), answer.text


def csrf_header(client: httpx.AsyncClient) -> dict[str, str]:
    """Return the header a page of the site sends with an unsafe request: the CSRF token."""
    return {"X-CSRFToken": client.cookies["csrftoken"]}
