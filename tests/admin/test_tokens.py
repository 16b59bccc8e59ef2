"""Personal API tokens: made in the admin or by `create_api_token`, shown once, revocable."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from streaming.api import access
from streaming.models import ApiToken
from tests.support.asgi import post_json

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = "/admin/streaming/apitoken/"
TOKEN_TEXT = re.compile(r"dfs_[A-Za-z0-9_-]{43}")
USERS = override_settings(STREAM_AUTH="users")


@pytest.fixture(autouse=True)
def _static_files_from_apps(settings) -> None:
    """Serve static files from the apps, as in development (no collectstatic in tests)."""
    settings.SERVESTATIC_AUTOREFRESH = True
    settings.SERVESTATIC_USE_FINDERS = True


def test_the_admin_shows_a_new_token_once_and_stores_only_its_hash(admin_client: Client) -> None:
    alice = User.objects.create_user("alice")
    answer = admin_client.post(f"{TOKENS}add/", {"user": alice.pk, "name": "laptop"}, follow=True)

    [raw] = TOKEN_TEXT.findall(answer.content.decode())
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.key_hash) == (alice, "laptop", ApiToken.hash(raw))
    assert raw not in str(ApiToken.objects.values_list().get())
    listing = admin_client.get(TOKENS).content.decode()
    assert token.prefix in listing
    assert raw not in listing


def test_the_command_prints_the_token_on_its_last_line() -> None:
    User.objects.create_user("bob")
    out = io.StringIO()
    call_command("create_api_token", "bob", "--name", "ci", stdout=out, stderr=io.StringIO())

    raw = out.getvalue().splitlines()[-1]
    assert TOKEN_TEXT.fullmatch(raw)
    assert ApiToken.objects.get(key_hash=ApiToken.hash(raw)).user.username == "bob"


def test_the_command_refuses_an_unknown_user() -> None:
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_token", "nobody", stdout=io.StringIO())


async def test_a_token_revoked_in_the_admin_gets_401(admin_client: Client) -> None:
    def make() -> tuple[str, int]:
        token = ApiToken(user=User.objects.create_user("carol"))
        raw = token.generate()
        token.save()
        return raw, token.pk

    raw, pk = await sync_to_async(make)()
    auth = {"authorization": f"Bearer {raw}"}
    with USERS:
        allowed = await post_json("/api/prose/generate", {"prompt": "x", "option": "fix"}, auth)
        assert allowed.status == 200
        await allowed.read_all()
        assert (await ApiToken.objects.aget(pk=pk)).last_used_at is not None

        action = {"action": "revoke_tokens", "_selected_action": [pk]}
        await sync_to_async(admin_client.post)(TOKENS, action)
        refused = await post_json("/api/prose/generate", {"prompt": "x", "option": "fix"}, auth)
    assert refused.status == 401
    assert (await ApiToken.objects.aget(pk=pk)).revoked_at is not None


async def test_a_token_s_last_use_is_written_once_a_minute_not_on_every_request() -> None:
    def make() -> tuple[str, int]:
        token = ApiToken(user=User.objects.create_user("dave"))
        raw = token.generate()
        token.save()
        return raw, token.pk

    raw, pk = await sync_to_async(make)()
    auth = {"authorization": f"Bearer {raw}"}
    body = {"prompt": "x", "option": "fix"}

    async def use() -> datetime | None:
        answer = await post_json("/api/prose/generate", body, auth)
        assert answer.status == 200
        await answer.read_all()
        return (await ApiToken.objects.aget(pk=pk)).last_used_at

    with USERS:
        first = await use()
        assert first is not None
        assert await use() == first  # within the minute: the row is left alone
        stale = first - access.LAST_USED_RESOLUTION
        await ApiToken.objects.filter(pk=pk).aupdate(last_used_at=stale)
        refreshed = await use()
    assert refreshed is not None
    assert refreshed > stale
