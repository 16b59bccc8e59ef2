"""The table of refusals: what a client gets for each."""

from __future__ import annotations

import json

from django.test import override_settings

from streaming.api.errors import Refusal


def test_every_refusal_answers_json_detail_with_its_status() -> None:
    for refusal in Refusal:
        response = refusal.error().response()
        assert response.status_code == refusal.status
        assert json.loads(response.content) == {"detail": refusal.detail}
        assert response["Content-Type"] == "application/json"


@override_settings(STREAM_RETRY_AFTER_SECONDS=7)
def test_refusals_to_retry_later_carry_retry_after() -> None:
    retried = {r for r in Refusal if "Retry-After" in r.error().response()}
    assert retried == {
        Refusal.CLIENT_AT_LIMIT,
        Refusal.AT_LIMIT,
        Refusal.SHUTTING_DOWN,
        Refusal.CANNOT_OPEN,
        Refusal.THREAD_NOT_FREED,
    }
    assert Refusal.AT_LIMIT.error().response()["Retry-After"] == "7"


def test_extra_headers_are_kept() -> None:
    response = Refusal.BAD_TOKEN.error({"WWW-Authenticate": "Bearer"}).response()
    assert (response.status_code, response["WWW-Authenticate"]) == (401, "Bearer")
