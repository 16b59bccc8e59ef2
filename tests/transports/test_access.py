"""STREAM_AUTH=users in process: live-stream limits count per user, else per address."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import override_settings

from tests.support.asgi import post_json
from tests.support.sources import Probe
from tests.support.users import make_token, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CHAT: dict[str, object] = {}


def bearer(raw: str) -> dict[str, str]:
    return {"authorization": f"Bearer {raw}"}


def tokens(*names: str) -> list[str]:
    users: list[User] = [make_user(name) for name in names]
    return [make_token(user) for user in users]


@override_settings(STREAM_AUTH="users", STREAM_MAX_STREAMS_PER_CLIENT=1)
async def test_the_limit_counts_each_users_streams_not_their_address(
    probe: Probe, use_source
) -> None:
    use_source("IdleSource")
    alice, bob = await sync_to_async(tokens)("alice", "bob")
    live = await post_json("/api/chat/stream", CHAT, bearer(alice))
    refused = await post_json("/api/chat/stream", CHAT, bearer(alice))
    other = await post_json("/api/chat/stream", CHAT, bearer(bob))  # same address

    assert (live.status, refused.status, other.status) == (200, 429, 200)
    probe.gate.set()
    for exchange in (live, refused, other):
        await exchange.read_all()


@override_settings(STREAM_MAX_STREAMS_PER_CLIENT=1)
async def test_without_users_the_limit_counts_the_address(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    live = await post_json("/api/chat/stream", CHAT)
    refused = await post_json("/api/chat/stream", CHAT)

    assert (live.status, refused.status) == (200, 429)
    probe.gate.set()
    for exchange in (live, refused):
        await exchange.read_all()
