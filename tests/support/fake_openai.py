"""An OpenAI-compatible chat-completions server on loopback, recording what it saw.

It speaks HTTP/1.1 over asyncio streams: a JSON error, or a streamed answer as the SDK
expects it (`data: {chunk}` lines, then `data: [DONE]`, in a chunked body). Each reply is
scripted by the test; each connection records the request, how many chunks went out and
when the client closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Connection:
    """One request the server received and what became of its connection."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float = 0.0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def system_prompt(self) -> str:
        """Return the system message the client sent."""
        return str(self.body["messages"][0]["content"])


Reply = Callable[[asyncio.StreamWriter, Connection], Awaitable[None]]


def chunk(
    delta: dict[str, Any], finish_reason: str | None = None, *, id: str = "chatcmpl-fake"
) -> dict[str, Any]:
    """Return a `chat.completion.chunk` with one choice."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def answer(
    *texts: str,
    reasoning: tuple[str, ...] = (),
    finish_reason: str = "stop",
    id: str = "chatcmpl-fake",
) -> list[dict[str, Any]]:
    """Return the chunks of a whole answer: role, reasoning, text, finish."""
    return [
        chunk({"role": "assistant", "content": ""}, id=id),
        *(chunk({"reasoning_content": piece}, id=id) for piece in reasoning),
        *(chunk({"content": text}, id=id) for text in texts),
        chunk({}, finish_reason, id=id),
    ]


def tool_call(
    name: str, arguments: str, *, call_id: str, id: str = "chatcmpl-fake"
) -> list[dict[str, Any]]:
    """Return the chunks of an answer that calls tool `name`, its arguments in two halves."""
    half = len(arguments) // 2

    def call(**fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": 0, **fields}]}

    head = {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return [
        chunk({"role": "assistant", "content": None}, id=id),
        chunk(call(**head), id=id),
        chunk(call(function={"arguments": arguments[:half]}), id=id),
        chunk(call(function={"arguments": arguments[half:]}), id=id),
        chunk({}, "tool_calls", id=id),
    ]


def stream(
    events: Sequence[dict[str, Any] | str], *, then: str = "done", interval: float = 0.0
) -> Reply:
    """Stream `events` (chunks, or raw `data:` values), then end as `then` says.

    `then`: `done` sends `data: [DONE]` and ends the body; `end` ends the body without
    `[DONE]`; `stall` sends nothing more and keeps the connection open; `drop` closes the
    connection in the middle of the body.
    """

    async def reply(writer: asyncio.StreamWriter, seen: Connection) -> None:
        await _start_stream(writer)
        for event in events:
            await asyncio.sleep(interval)
            await _send_data(writer, seen, event if isinstance(event, str) else json.dumps(event))
        if then == "done":
            await _send_data(writer, seen, "[DONE]")
        if then in ("done", "end"):
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif then == "drop":
            writer.transport.abort()
        elif then == "stall":
            await seen.closed.wait()

    return reply


def endless(*, interval: float) -> Reply:
    """Stream a text chunk every `interval` seconds until the client hangs up."""

    async def reply(writer: asyncio.StreamWriter, seen: Connection) -> None:
        await _start_stream(writer)
        while not seen.closed.is_set():
            with contextlib.suppress(ConnectionError):
                await _send_data(writer, seen, json.dumps(chunk({"content": "token "})))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.closed.wait(), interval)

    return reply


def error(status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> Reply:
    """Answer with HTTP `status` and a JSON body."""

    async def reply(writer: asyncio.StreamWriter, seen: Connection) -> None:
        payload = json.dumps(body).encode()
        lines = [f"HTTP/1.1 {status} Error", "Content-Type: application/json", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        lines.append(f"Content-Length: {len(payload)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()

    return reply


async def silent(writer: asyncio.StreamWriter, seen: Connection) -> None:
    """Read the request and never answer."""
    await seen.closed.wait()


class FakeOpenAI:
    """The server: `replies` answer successive requests, the last one all later requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.connections: list[Connection] = []
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def base_url(self) -> str:
        """Return the URL the SDK takes as OPENAI_BASE_URL."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeOpenAI]:
        """Serve on a free loopback port until the block ends."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield self
        finally:
            # Hang up on the connections still open; their handlers then end on their own.
            self._server.close()
            for writer in self._open.values():
                writer.transport.abort()
            await asyncio.gather(*self._open, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = writer
        try:
            seen = await _read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            del self._open[task]
            return
        self.connections.append(seen)
        self.connected.set()
        reply = self.replies[min(len(self.connections), len(self.replies)) - 1]
        watcher = asyncio.create_task(_watch_close(reader, seen))
        try:
            await reply(writer, seen)
            await watcher
        except ConnectionError:
            await watcher
        finally:
            watcher.cancel()
            writer.close()
            seen.finished.set()
            del self._open[task]


async def _read_request(reader: asyncio.StreamReader) -> Connection:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *header_lines = head.split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in filter(None, header_lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Connection(method, path, headers, json.loads(body or b"{}"))


async def _watch_close(reader: asyncio.StreamReader, seen: Connection) -> None:
    """Record when the client closes the connection (EOF or reset)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    seen.closed_at = asyncio.get_running_loop().time()
    seen.closed.set()


async def _start_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        # One request per connection: a client that pools connections must not reuse it.
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()


async def _send_data(writer: asyncio.StreamWriter, seen: Connection, data: str) -> None:
    payload = f"data: {data}\n\n".encode()
    writer.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")
    await writer.drain()
    seen.chunks_sent += 1
