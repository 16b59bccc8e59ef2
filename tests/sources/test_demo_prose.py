"""The demo prose source: deterministic rewrites, streamed in small pieces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from streaming.api.requests import ProseRequest
from streaming.sources.base import ProseSource
from streaming.sources.demo_prose import DemoProseSource


@pytest.fixture(autouse=True)
def no_delay() -> Iterator[None]:
    with override_settings(STREAM_DEMO_DELAY_MS=0):
        yield


async def test_source_satisfies_the_protocol() -> None:
    prose: ProseSource = DemoProseSource()
    assert [e async for e in prose.stream(ProseRequest(prompt="tea", option="fix"))]


PROMPT = "the  cat sat on the mat. it was very happy  \nand i liked it"
LONGER_TAIL = (
    "\n\nIn more detail, this point rests on its background, the evidence for it and what "
    "follows from it. Each of these gives the reader the context to weigh it on its merits."
)


@pytest.mark.parametrize(
    ("option", "prompt", "command", "expected"),
    [
        (
            "continue",
            PROMPT,
            "",
            "Building on this, the next step is to look at what it means in practice. "
            "The details show why it matters.",
        ),
        (
            "improve",
            PROMPT,
            "",
            "The cat sat on the mat. It was happy\nand I liked it. "
            "In short: The cat sat on the mat.",
        ),
        ("improve", "tea is  good", "", "Tea is good."),
        (
            "improve",
            "deer is a mammal. it are fast. very very fast",
            "",
            "Deer is a mammal. It is fast. In short: Deer is a mammal.",
        ),
        ("improve", "they is tired. so so tired", "", "They are so tired."),
        ("improve", "It is cold. Really cold!", "", "It is cold!"),
        ("improve", "it is quick. very fast", "", "It is quick. Very fast. In short: It is quick."),
        ("improve", "i is here. we was late", "", "I am here. We were late. In short: I am here."),
        ("improve", "in order to win we trained", "", "To win we trained."),
        ("shorter", "One. Two! Three? Four.", "", "One. Two!"),
        ("shorter", "One.\n\nTwo.\n\nThree.", "", "One."),
        ("shorter", "a b c d e f g h", "", "a b c d…"),
        ("shorter", "short text", "", "short text"),
        ("longer", PROMPT, "", PROMPT.rstrip() + LONGER_TAIL),
        ("fix", PROMPT, "", "The cat sat on the mat. It was very happy\nand I liked it."),
        ("fix", "one.  two?\n\nthree", "", "One. Two?\n\nThree."),
        ("fix", "she don't know it are late", "", "She doesn't know it is late."),
        ("fix", "he had had enough. the the end", "", "He had had enough. The end."),
        (
            "zap",
            "tea is good",
            "make it\nformal",
            "Applied command: make it formal\n\nTea is good.",
        ),
    ],
)
async def test_prose_rewrites_each_option_deterministically(
    option: str, prompt: str, command: str, expected: str
) -> None:
    request = ProseRequest.model_validate({"prompt": prompt, "option": option, "command": command})

    first = [event async for event in DemoProseSource().stream(request)]
    second = [event async for event in DemoProseSource().stream(request)]

    assert first == second
    assert {event.name for event in first} == {""}
    pieces = [event.data for event in first]
    assert all(isinstance(piece, str) and piece for piece in pieces)
    assert "".join(str(piece) for piece in pieces) == expected


async def test_prose_streams_in_small_pieces() -> None:
    request = ProseRequest(prompt=PROMPT, option="longer")

    pieces = [str(event.data) async for event in DemoProseSource().stream(request)]

    assert len(pieces) > 10
    assert all(len(piece.split()) <= 3 for piece in pieces)


async def test_closing_the_prose_stream_midway_is_clean() -> None:
    stream = DemoProseSource().stream(ProseRequest(prompt=PROMPT, option="longer"))
    await anext(stream)
    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await anext(stream)
