"""What both transports do with a stream: follow it, and encode what it yields."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from streaming.runs.frames import Frame
from streaming.runs.readers import Comment, Followable

T = TypeVar("T")


async def encoded(
    stream: Followable,
    *,
    after: int,
    comment: Callable[[str], list[T]],
    frames: Callable[[list[Frame]], list[T]],
) -> AsyncGenerator[T, None]:
    """Yield what the transport sends for `stream` after event `after`, encoded.

    The stream's reader is closed at once when the transport stops (design rule 4): the
    run learns that its reader went away, and stops if it was the last one.
    """
    async with contextlib.aclosing(stream.follow(after=after)) as outputs:
        async for output in outputs:
            items = comment(output.text) if isinstance(output, Comment) else frames(output)
            for item in items:
                yield item
