"""`<think>` blocks never reach the client, however the model's chunks split them."""

from __future__ import annotations

import pytest

from streaming.sources.think import ThinkStripper, strip_think

ANSWER = "<think>\nThe user asks about tea.\n</think>\n\n# Tea\n\nTea is old."


def streamed(chunks: list[str]) -> list[str]:
    stripper = ThinkStripper()
    sent = [stripper.feed(chunk) for chunk in chunks]
    return [*sent, stripper.flush()]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([ANSWER], id="one chunk"),
        pytest.param(list(ANSWER), id="one character a chunk"),
        pytest.param(
            ["<th", "ink>\nThe user", " asks about tea.\n</thi", "nk>\n\n# Tea\n\nTea is old."],
            id="tags split",
        ),
        pytest.param(
            ["<think>", "\nThe user asks about tea.\n", "</think>", "\n\n", "# Tea\n\nTea is old."],
            id="tags whole",
        ),
    ],
)
def test_the_reasoning_and_the_whitespace_after_it_are_dropped(chunks: list[str]) -> None:
    assert "".join(streamed(chunks)) == "# Tea\n\nTea is old."


def test_text_goes_out_as_soon_as_it_cannot_begin_a_tag() -> None:
    assert streamed(["Tea is", " old <", "b>", "."]) == ["Tea is", " old ", "<b>", ".", ""]


def test_a_held_back_tag_start_goes_out_when_the_message_ends() -> None:
    assert streamed(["1 <", "<thi"]) == ["1 ", "<", "<thi"]


def test_text_around_a_block_in_the_middle_is_kept() -> None:
    assert "".join(streamed(["Before <think>x</think> after"])) == "Before after"


def test_a_block_never_closed_hides_the_rest_of_the_message() -> None:
    assert "".join(streamed(["Hi <think>still ", "thinking"])) == "Hi "


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        (ANSWER, "# Tea\n\nTea is old."),
        ("  no tags  ", "  no tags  "),  # deer-flow strips only around a removed block
        ("<think>a</think> b <think>c</think> d", "b  d"),
    ],
)
def test_a_whole_message_is_stripped_as_deer_flow_strips_it(text: str, sent: str) -> None:
    assert strip_think(text) == sent
