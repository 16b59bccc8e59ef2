"""The offline, deterministic demo of deer-flow's prose editor (the default prose source)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from streaming.api.requests import ProseRequest
from streaming.conf import conf
from streaming.sources.base import Event
from streaming.sources.demo_text import pieces

CONTINUATION = (
    "Building on this, the next step is to look at what it means in practice. "
    "The details show why it matters."
)
ELABORATION = (
    "In more detail, this point rests on its background, the evidence for it and what "
    "follows from it. Each of these gives the reader the context to weigh it on its merits."
)
WORDY = ((r"\bin order to\b", "to"), (r"\ba lot of\b", "many"), (r"(?<=\w )(?:very|really) ", ""))
# Subject and verb that disagree: (pattern, replacement), matched ignoring case.
AGREEMENT = (
    (r"\b(it|he|she) are\b", r"\1 is"),
    (r"\b(we|you|they) is\b", r"\1 are"),
    (r"\b(we|you|they) was\b", r"\1 were"),
    (r"\b(i) (?:is|are)\b", r"\1 am"),
    (r"\b(it|he|she) don't\b", r"\1 doesn't"),
)
# Words that may rightly follow themselves ("he had had enough").
DOUBLES = frozenset({"had", "that"})
REPEATED_WORD = re.compile(r"\b(\w+)(?:[ \t]+\1\b)+", re.IGNORECASE)
# A fragment that only repeats the last word of the sentence before it ("Very fast.").
ECHO = re.compile(r"((?:(?:very|really|so|too|quite|extremely)\s+)*)(\w+)([.!?]+)", re.IGNORECASE)
LAST_WORD = re.compile(r"(\w+)[.!?]+$")
SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")


def _fix(text: str) -> str:
    """Collapse repeated spaces and words, fix agreement, capitalize, end with a period."""
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.strip().split("\n"))
    fixed = REPEATED_WORD.sub(lambda m: m[0] if m[1].lower() in DOUBLES else m[1], "\n".join(lines))
    for wrong, right in AGREEMENT:
        fixed = re.sub(wrong, right, fixed, flags=re.IGNORECASE)
    fixed = re.sub(r"\bi\b", "I", fixed)
    fixed = re.sub(r"(^|[.!?]\s+|\n\n)([a-z])", lambda m: m[1] + m[2].upper(), fixed)
    return fixed + "." if fixed[-1:].isalnum() else fixed


def _merge_echoes(text: str) -> str:
    """Fold each echo fragment into the sentence before: "It is fast. Very fast." -> one."""
    parts = SENTENCE_END.split(text)
    merged = [parts[0]]
    for separator, sentence in zip(parts[1::2], parts[2::2], strict=True):
        echo = ECHO.fullmatch(sentence)
        last = LAST_WORD.search(merged[-1])
        if echo and last and echo[2].lower() == last[1].lower():
            merged[-1] = merged[-1][: last.start()] + echo[1].lower() + last[1] + echo[3]
        else:
            merged += [separator, sentence]
    return "".join(merged)


def _improve(text: str) -> str:
    """Fix the text, fold echoes, drop wordy phrases; add a one-line summary to longer texts."""
    plain = _merge_echoes(_fix(text))
    for wordy, short in WORDY:
        plain = re.sub(wordy, short, plain, flags=re.IGNORECASE)
    improved = _fix(plain)
    sentences = SENTENCE_END.split(improved)[::2]
    if len(sentences) < 2:
        return improved
    return f"{improved} In short: {sentences[0].rstrip('.!?')}."


def _shorter(text: str) -> str:
    """Keep the first half of the sentences, or of the words of a single long sentence."""
    parts = SENTENCE_END.split(text.strip())
    count = len(parts[::2])
    if count > 1:
        return "".join(parts[: 2 * max(1, count // 2) - 1])
    words = text.split()
    return " ".join(words[: len(words) // 2]) + "…" if len(words) > 6 else text.strip()


def _rewrite(request: ProseRequest) -> str:
    """Return the demo's output for `request`: the text the editor shows.

    `continue` returns only the new sentences, as deer-flow's editor inserts them itself.
    """
    text = request.prompt
    if request.option == "continue":
        return CONTINUATION
    if request.option == "improve":
        return _improve(text)
    if request.option == "shorter":
        return _shorter(text)
    if request.option == "longer":
        return f"{text.rstrip()}\n\n{ELABORATION}".lstrip()
    if request.option == "zap":
        return f"Applied command: {' '.join((request.command or '').split())}\n\n{_fix(text)}"
    return _fix(text)


class DemoProseSource:
    """Stream a deterministic, offline rewrite of the prompt per option (deer-flow's prose)."""

    async def stream(self, request: ProseRequest) -> AsyncGenerator[Event, None]:
        """Yield the rewritten text in pieces of a few words, pausing before each one."""
        delay = conf.demo_delay_seconds
        for piece in pieces(_rewrite(request), words=3):
            await asyncio.sleep(delay)
            yield Event("", piece)
