"""What both transports do with a stream: follow it, and encode what it yields."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from streaming.observe.context import StreamTags, current_stream
from streaming.runs.frames import Frame
from streaming.runs.readers import Comment, Followable
from streaming.runs.run import StreamRun
from streaming.runs.snapshot import SnapshotResume

T = TypeVar("T")


def tags_of(stream: Followable, session_id: uuid.UUID) -> StreamTags:
    """Return what names `stream` in log lines (a resumed log knows only its session)."""
    if isinstance(stream, SnapshotResume):
        stream = stream.stream
    return stream.tags if isinstance(stream, StreamRun) else StreamTags(str(session_id))


async def encoded(
    stream: Followable,
    *,
    tags: StreamTags,
    after: int,
    comment: Callable[[str], list[T]],
    frames: Callable[[list[Frame]], list[T]],
) -> AsyncGenerator[T, None]:
    """Yield what the transport sends for `stream` after event `after`, encoded.

    The stream's reader is closed at once when the transport stops (design rule 4): the
    run learns that its reader went away, and stops if it was the last one. What is
    logged while it reads names the stream.
    """
    current_stream.set(tags)
    async with contextlib.aclosing(stream.follow(after=after)) as outputs:
        async for output in outputs:
            items = comment(output.text) if isinstance(output, Comment) else frames(output)
            for item in items:
                yield item
