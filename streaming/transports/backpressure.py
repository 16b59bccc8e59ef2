"""Slow and stuck clients: bound how long a client may leave sent bytes unread.

ASGI tells an application neither that its client stopped reading nor how to drop a
connection. daphne writes whatever the application sends into Twisted's buffer, without
bound; uvicorn makes `send` wait while the socket's buffer is full (backpressure), with no
bound. `bound_sends` wraps an ASGI application so that every send of a response body or a
WebSocket message waits while the server's buffer for that client is full (daphne too,
through Twisted's producer API), and for at most STREAM_SEND_TIMEOUT_SECONDS: past that
the connection is dropped, and the send raises `ClientStalledError`, a kind of
`asyncio.CancelledError`, as a send to a client that has gone away does. Django's handler
and the stream's reader treat it as a disconnect; the run records `slow_client` (it finds
the connection through `runs.run.reader_connection`). A stream's reader then holds at most
the server's socket buffer plus its
run's event log, which STREAM_LOG_MAX_BYTES bounds.

The server's connection is found from its `send` callable: uvicorn's is a method of an
object with an asyncio transport, daphne's a `functools.partial` of its protocol. On any
other server sends pass through unchanged, without a bound (logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from streaming.conf import conf
from streaming.runs.readers import reader_connection

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

# The messages that carry data to the client, which a stuck client stops taking.
DATA_MESSAGES = frozenset({"http.response.body", "websocket.send"})


class ClientStalledError(asyncio.CancelledError):
    """The client left sent bytes unread for STREAM_SEND_TIMEOUT_SECONDS; it was dropped."""


class ClientConnection:
    """One client connection's sends, as a server this module does not know takes them.

    The subclasses bound how long a send may wait for the client.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.stalled = False

    async def send(self, message: Message) -> None:
        """Send `message`; raise ClientStalledError if the client has not taken its bytes."""
        if self.stalled:
            raise ClientStalledError
        await self._send(message)

    def _drop(self, abort: Callable[[], object]) -> None:
        self.stalled = True
        logger.info(
            "Client left sent bytes unread for %.0f s: dropping its connection",
            conf.send_timeout_seconds,
        )
        abort()


class AsyncioConnection(ClientConnection):
    """uvicorn: `send` itself waits while the transport's buffer is full; bound that wait."""

    def __init__(self, send: Send, transport: Any) -> None:
        super().__init__(send)
        self._transport = transport

    async def send(self, message: Message) -> None:
        """Send, bounding the wait when bytes are still queued for the client."""
        if self.stalled:
            raise ClientStalledError
        if message["type"] not in DATA_MESSAGES or not self._transport.get_write_buffer_size():
            await self._send(message)
            return
        try:
            async with asyncio.timeout(conf.send_timeout_seconds):
                await self._send(message)
        except TimeoutError:
            self._drop(self._transport.abort)
            raise ClientStalledError from None


class TwistedConnection(ClientConnection):
    """daphne: Twisted buffers every write; a push producer learns when its buffer is full.

    The producer is registered with daphne's HTTP request, or for a WebSocket with the HTTP
    channel it was upgraded from: Twisted calls `pauseProducing` when the transport's buffer
    passes its limit and `resumeProducing` when it has drained.
    """

    def __init__(self, send: Send, protocol: Any) -> None:
        super().__init__(send)
        self._protocol = protocol
        self._writable = asyncio.Event()
        self._writable.set()
        self._consumer: Any = None  # what this producer is registered with

    async def send(self, message: Message) -> None:
        """Send once Twisted's buffer for this client has room (bounded wait)."""
        if self.stalled:
            raise ClientStalledError
        kind = message["type"]
        if kind in ("http.response.start", "websocket.accept"):
            self._register()
        elif kind in DATA_MESSAGES and not self._writable.is_set():
            try:
                async with asyncio.timeout(conf.send_timeout_seconds):
                    await self._writable.wait()
            except TimeoutError:
                self._unregister()
                self._drop(self._protocol.transport.abortConnection)
                raise ClientStalledError from None
        if kind == "http.response.body" and not message.get("more_body", False):
            self._unregister()  # The response ends: the channel serves the next request.
        await self._send(message)

    def close(self) -> None:
        """Let go of the protocol once the application is done with it."""
        self._unregister()

    # Twisted's IPushProducer, called on the reactor's (the event loop's) thread.

    def pauseProducing(self) -> None:
        """Twisted's buffer for this client is full."""
        self._writable.clear()

    def resumeProducing(self) -> None:
        """Twisted's buffer for this client has drained."""
        self._writable.set()

    def stopProducing(self) -> None:
        """The connection is going away: nothing waits for it any more."""
        self._writable.set()

    def _register(self) -> None:
        if self._consumer is not None:
            return
        # An HTTP request takes a producer; so does a WebSocket, through its transport,
        # whose producer slot daphne's HTTP channel still holds after the upgrade: the
        # channel passes its pause and resume on to a producer registered with it.
        consumers: list[Any] = [self._protocol, getattr(self._protocol.transport, "producer", None)]
        for consumer in consumers:
            try:
                consumer.registerProducer(self, True)
            except (AttributeError, RuntimeError, ValueError):
                continue  # Not a consumer, or its producer slot is taken.
            self._consumer = consumer
            return
        logger.debug("No backpressure for this connection: no free producer slot")

    def _unregister(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):  # The connection may be gone already.
                consumer.unregisterProducer()


def client_connection(send: Send) -> ClientConnection:
    """Return the bounded connection for the server's `send` callable."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # asyncio's transports, and uvloop's (which do not subclass asyncio's).
    if hasattr(transport, "get_write_buffer_size") and hasattr(transport, "abort"):
        return AsyncioConnection(send, transport)
    if isinstance(send, functools.partial) and send.args:
        protocol = send.args[0]
        if hasattr(protocol, "registerProducer") and hasattr(protocol, "transport"):
            return TwistedConnection(send, protocol)
    if not _warned:
        _warned.append(True)
        logger.warning(
            "This ASGI server's connections are not recognised: sends to clients that stop "
            "reading are not bounded (daphne and uvicorn are)."
        )
    return ClientConnection(send)


_warned: list[bool] = []


def bound_sends(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so that its sends to a client that stops reading are bounded."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        connection = client_connection(send)
        token = reader_connection.set(connection)
        try:
            await app(scope, receive, connection.send)
        finally:
            reader_connection.reset(token)
            if isinstance(connection, TwistedConnection):
                connection.close()

    return bounded
