"""Drive the real ASGI application in-process, as a server would."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from asgiref.testing import ApplicationCommunicator

from project.asgi import application

RECEIVE_TIMEOUT = 10.0


@dataclass
class HttpExchange:
    """One request to the application and what came back so far."""

    communicator: ApplicationCommunicator
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    finished: bool = False

    async def start(self) -> HttpExchange:
        """Wait for the response's status and headers."""
        message = await self.communicator.receive_output(RECEIVE_TIMEOUT)
        assert message["type"] == "http.response.start", message
        self.status = message["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        return self

    async def read_chunk(self) -> bytes:
        """Return the next body chunk."""
        message = await self.communicator.receive_output(RECEIVE_TIMEOUT)
        assert message["type"] == "http.response.body", message
        chunk: bytes = message.get("body", b"")
        self.body += chunk
        if not message.get("more_body", False):
            self.finished = True
        return chunk

    async def read_until(self, marker: bytes) -> None:
        """Read until the body contains `marker`."""
        while marker not in self.body:
            assert not self.finished, f"stream ended before {marker!r}: {self.body!r}"
            await self.read_chunk()

    async def read_all(self) -> bytes:
        """Read the body to its end."""
        while not self.finished:
            await self.read_chunk()
        await self.communicator.wait(RECEIVE_TIMEOUT)
        return self.body

    async def disconnect(self) -> None:
        """Hang up, as a client closing the connection, and wait for the app to finish."""
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(RECEIVE_TIMEOUT)


async def request(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> HttpExchange:
    """Send a request to the application and wait for the response to start."""
    raw_headers = [(b"host", b"testserver")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    return await HttpExchange(communicator).start()


async def post_json(path: str, payload: Any, headers: dict[str, str] | None = None) -> HttpExchange:
    """POST `payload` as JSON and wait for the response to start."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    return await request("POST", path, body=json.dumps(payload).encode(), headers=all_headers)
