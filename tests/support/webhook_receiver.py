"""A webhook receiver on loopback that verifies Standard Webhooks signatures.

It speaks just enough HTTP/1.1 over asyncio streams: it reads each POST, verifies it with
the `standardwebhooks` package (the spec's reference implementation, not the server's
code), records it, and answers as the test scripted: a status, or `HANG` (no answer until
the test calls `release()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

HANG = "hang"
# Far above what a delivery takes, even with a retry's backoff on a busy machine.
ARRIVAL_SECONDS = 30.0
# A secret in the spec's form: 32 bytes, base64.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+ZwyFfrV1hI="


@dataclass
class Received:
    """One POST the receiver got."""

    headers: dict[str, str]
    body: bytes
    verified: Any = None  # the payload, if the signature verified
    problem: str = ""  # why it did not
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def json(self) -> Any:
        """Return the body as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """Receive webhooks on a loopback port; answer each as scripted (200 once the script ends)."""

    def __init__(self, *replies: int | str, secret: str = SECRET) -> None:
        self.replies = list(replies)
        self.verifier = Webhook(secret)
        self.received: list[Received] = []
        self.arrived: asyncio.Queue[Received] = asyncio.Queue()
        self._release = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """Where webhooks should be sent."""
        return f"http://127.0.0.1:{self.port}/hooks/stream-ended"

    def release(self) -> None:
        """Let every hung request have its 200."""
        self._release.set()

    async def next(self) -> Received:
        """Return the next webhook to arrive (fail the test if none comes within 30 s)."""
        async with asyncio.timeout(ARRIVAL_SECONDS):
            return await self.arrived.get()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            if not request_line:
                return
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(headers, body)
            try:
                received.verified = self.verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                received.problem = str(exc)
            self.received.append(received)
            self.arrived.put_nowait(received)
            reply = self.replies.pop(0) if self.replies else 200
            if reply == HANG:
                await self._release.wait()
                reply = 200
            writer.write(
                f"HTTP/1.1 {reply} Reply\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            received.answered.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # The sender gave up (its timeout): what it sent is recorded.
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def webhook_receiver(*replies: int | str) -> AsyncIterator[WebhookReceiver]:
    """Run a receiver that answers with `replies` in turn, until the block ends."""
    receiver = WebhookReceiver(*replies)
    server = await asyncio.start_server(receiver._handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.release()
        server.close()
        await server.wait_closed()
