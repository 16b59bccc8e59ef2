"""The one rule for the id a resume continues after, as both transports read it."""

from __future__ import annotations

from typing import Any

import pytest

from streaming.api.errors import ApiError
from streaming.api.event_ids import MAX_EVENT_ID, parse_event_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0), ("42", 42), (" 7 ", 7), ("007", 7), (0, 0), (42, 42), (MAX_EVENT_ID, MAX_EVENT_ID)],
)
def test_accepts_ascii_digits_and_integers(value: Any, expected: int) -> None:
    assert parse_event_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "²",
        "٣",
        "0x10",
        str(MAX_EVENT_ID + 1),
        -1,
        10**30,
        True,
        1.0,
        None,
    ],
)
def test_refuses_anything_else_with_one_text(value: Any) -> None:
    with pytest.raises(ApiError) as refused:
        parse_event_id(value)
    assert (refused.value.status, refused.value.detail) == (
        422,
        "Last-Event-ID must be a non-negative integer.",
    )
