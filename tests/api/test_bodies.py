"""One parser for request bodies and WebSocket messages, worded for each transport."""

from __future__ import annotations

import pytest
from django.test import override_settings

from streaming.api.bodies import BODY, MESSAGE, is_json, parse_json_object
from streaming.api.errors import ApiError


def refusal(raw: bytes | str, wording: object) -> tuple[int, object]:
    with pytest.raises(ApiError) as refused:
        parse_json_object(raw, wording)  # type: ignore[arg-type]
    return refused.value.status, refused.value.detail


def test_an_object_is_returned_as_parsed() -> None:
    assert parse_json_object(b'{"a": [1, "\\u00e9"]}', BODY) == {"a": [1, "é"]}
    assert parse_json_object('{"type": "cancel"}', MESSAGE) == {"type": "cancel"}


def test_an_empty_message_is_not_json() -> None:
    assert refusal("", MESSAGE) == (400, "Message is not valid JSON.")


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/vnd.example+json", True),
        ("text/plain", False),
        ("text/plain; charset=utf-8", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/jsonp", False),
        ("json", False),
        ("", False),
    ],
)
def test_only_json_content_types_are_read(content_type: str, json: bool) -> None:
    assert is_json(content_type) is json


@override_settings(STREAM_MAX_BODY_BYTES=10)
def test_the_size_bound_counts_bytes_for_both() -> None:
    assert parse_json_object('{"a":"é"}', MESSAGE) == {"a": "é"}  # 10 bytes
    assert refusal('{"a":"éé"}', MESSAGE) == (413, "Message is larger than 10 bytes.")
    assert refusal(b'{"a":"bbbbb"}', BODY) == (413, "Request body is larger than 10 bytes.")


def test_invalid_json_is_400_in_each_wording() -> None:
    status, detail = refusal(b"{nope", BODY)
    assert status == 400
    assert str(detail).startswith("Request body is not valid JSON: Expecting property name")
    assert refusal("{nope", MESSAGE) == (400, "Message is not valid JSON.")
    deep = "[" * 100_000 + "]" * 100_000
    assert refusal(deep, BODY) == (400, "Request body is not valid JSON: nested too deeply.")
    assert refusal(deep, MESSAGE) == (400, "Message is not valid JSON.")


def test_json_that_is_not_an_object_is_422_in_each_wording() -> None:
    assert refusal(b"[1]", BODY) == (
        422,
        [{"type": "model_type", "loc": ["body"], "msg": "Input should be a JSON object"}],
    )
    assert refusal("[1]", MESSAGE) == (422, "Message must be a JSON object.")
