"""SSE bodies streamed after Django's request handler has finished: no OS thread per stream.

Django's ASGI handler runs each request in asgiref's `ThreadSensitiveContext`. Its first
thread-sensitive sync call (the `close_old_connections` receiver of `request_started`, the
sync middleware) starts an OS thread for that request, and the thread lives until the
handler returns: for a streamed response, until the stream ends. So a stream view does not
stream its body through Django. Django's handler runs the whole request as for any view
(host validation, every middleware, the token, admission, the session row written) and
sends the response's status and headers; the view leaves the body empty and hands the
body over (`BodyHandoff.take`), its reader already attached. `serve_bodies`, the ASGI layer
around the handler, then sends it once the handler, its thread and `request_finished` are
done, and watches for the client's disconnect as Django's handler would (design rule 1).
A body that is never sent (the client left, or the handler answered otherwise) is closed,
which tells the run its reader went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from streaming.observe.context import StreamTags, current_stream
from streaming.transports import sse
from streaming.transports.request_threads import request_thread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

# The scope key under which a request finds the handoff of its body.
HANDOFF = "streaming.body_handoff"


@dataclass(slots=True)
class BodyHandoff:
    """A stream an SSE view hands to the ASGI layer, to be sent after the handler returns."""

    body: AsyncGenerator[bytes, None] | None = None
    first: bytes = b""  # read from `body` already
    session_header: bytes = b""
    started: bool = False  # the handler sent this stream's status and headers
    disconnected: bool = False  # the client left while the handler ran
    tags: StreamTags | None = None  # what names the stream in the lines logged sending it
    client_left: Callable[[], None] | None = None  # told at once when the client leaves

    def take(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        first: bytes,
        session_id: uuid.UUID,
        tags: StreamTags | None = None,
        client_left: Callable[[], None] | None = None,
    ) -> None:
        """Send `first`, then the rest of `body`, once the handler has sent the headers;
        call `client_left` as soon as the client is seen to leave."""
        self.body, self.first, self.tags = body, first, tags
        self.client_left = client_left
        self.session_header = str(session_id).encode()


def handoff_of(scope: Scope | None) -> BodyHandoff | None:
    """Return the handoff of the request with this ASGI scope, if it is served here."""
    found = (scope or {}).get(HANDOFF)
    return found if isinstance(found, BodyHandoff) else None


def serve_bodies(app: ASGIApp) -> ASGIApp:
    """Wrap Django's handler: stream the bodies its stream views hand over, after it."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        handoff = BodyHandoff()

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                handoff.disconnected = True
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_for(handoff, message):
                handoff.started = True
            elif handoff.started and message["type"] == "http.response.body":
                return  # The empty body of the view's response: the stream's follows.
            await send(message)

        try:
            async with request_thread():  # Django's handler, its sync calls in a reused thread
                await app({**scope, HANDOFF: handoff}, watched_receive, guarded_send)
            if handoff.body is not None and handoff.started and not handoff.disconnected:
                current_stream.set(handoff.tags)  # This task's, for the body's log lines.
                await _stream_body(handoff, handoff.body, receive, send)
        finally:
            if handoff.body is not None:
                await handoff.body.aclose()  # Sent to its end, or never: the reader is gone.

    return serve


def _is_for(handoff: BodyHandoff, message: Message) -> bool:
    """Return whether a response start carries the session of the handed-off stream."""
    if handoff.body is None:
        return False
    header = sse.SESSION_HEADER.lower().encode()
    return any(
        name.lower() == header and value == handoff.session_header
        for name, value in message.get("headers", [])
    )


async def _stream_body(
    handoff: BodyHandoff, body: AsyncGenerator[bytes, None], receive: Receive, send: Send
) -> None:
    """Send the stream's frames until it ends or the client goes away."""
    sending = asyncio.ensure_future(_send_all(handoff.first, body, send))
    leaving = asyncio.ensure_future(_disconnect(receive, handoff.client_left))
    try:
        await asyncio.wait({sending, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # The client left, or the server is stopping this request: close the reader at
        # once, and wait for it (design rule 4).
        for task in (sending, leaving):
            task.cancel()
        await asyncio.wait({sending, leaving})
    if not sending.cancelled() and sending.exception() is not None:
        raise sending.exception()  # type: ignore[misc]


async def _send_all(first: bytes, body: AsyncGenerator[bytes, None], send: Send) -> None:
    async with contextlib.aclosing(body):
        await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnect(receive: Receive, client_left: Callable[[], None] | None) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if client_left is not None:
        # At once, before the reader is closed: a run whose last reader this was starts
        # ending now (its source cleaned up a few task switches sooner; S3).
        client_left()
