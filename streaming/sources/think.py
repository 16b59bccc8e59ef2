"""Strip `<think>…</think>` from streamed content, also when a tag arrives in pieces.

Models such as DeepSeek-R1 put their reasoning there instead of `reasoning_content`.
deer-flow removes it from each chunk on its own (and strips the whitespace around what is
left), so a block or a tag split across chunks gets through; this filter keeps what it
needs of one chunk to decide on the next. A message that opens a block and never closes it
loses the rest of its text, as deer-flow's UI would otherwise show the reasoning.
"""

from __future__ import annotations

import re

OPEN = "<think>"
CLOSE = "</think>"
_BLOCK = re.compile(r"<think>[\s\S]*?</think>")


def strip_think(text: str) -> str:
    """Return a whole message's `text` without its think blocks, as deer-flow does."""
    return _BLOCK.sub("", text).strip() if OPEN in text else text


def _partial_tag(text: str, tag: str) -> int:
    """Return the length of the longest end of `text` that begins `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkStripper:
    """Filter the content chunks of one message, holding back what may begin a tag."""

    def __init__(self) -> None:
        self._held = ""
        self._thinking = False
        self._after_block = False  # drop the whitespace that follows a block

    def feed(self, chunk: str) -> str:
        """Return the part of `chunk` (after what was held back) that is not reasoning."""
        text, self._held = self._held + chunk, ""
        out: list[str] = []
        while text:
            if self._thinking:
                end = text.find(CLOSE)
                if end < 0:
                    self._held = text[len(text) - _partial_tag(text, CLOSE) :]
                    break
                text, self._thinking, self._after_block = text[end + len(CLOSE) :], False, True
                continue
            if self._after_block:
                text = text.lstrip()
                if not text:
                    break
                self._after_block = False
            start = text.find(OPEN)
            if start < 0:
                keep = len(text) - _partial_tag(text, OPEN)
                out.append(text[:keep])
                self._held = text[keep:]
                break
            out.append(text[:start])
            text, self._thinking = text[start + len(OPEN) :], True
        return "".join(out)

    def flush(self) -> str:
        """Return what was held back when the message ends (never reasoning)."""
        held, self._held = self._held, ""
        return "" if self._thinking else held
