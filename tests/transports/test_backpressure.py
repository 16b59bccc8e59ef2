"""Slow and stuck clients: what one may hold on the server is bounded, and it is dropped.

A client that stops reading while its stream produces 100 MiB (tests.support.sources.BulkSource)
must leave the server's memory bounded, and its row must end `cancelled/slow_client`, on
both servers: uvicorn has backpressure in `send`, daphne gets it through Twisted's producer
API (streaming/connection.py); the event log holds at most STREAM_LOG_MAX_BYTES.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.live import SERVERS, LiveServer, log_problems, migrate, serve, server_env
from tests.support.sources import BulkSource

CHAT = {"messages": [{"role": "user", "content": "a lot"}], "thread_id": "bulk"}
BULK_BYTES = BulkSource.BULK_CHUNK * BulkSource.BULK_EVENTS  # 100 MiB
MIB = 1024 * 1024


def bulk_env(tmp: Path, **overrides: str) -> dict[str, str]:
    env = server_env(tmp, STREAM_CHAT_SOURCE="tests.support.sources.BulkSource", **overrides)
    migrate(env)
    return env


class StalledClient:
    """Send a chat request, read the response's headers, then read nothing at all."""

    def __init__(self, live: LiveServer) -> None:
        address = urlsplit(live.url)
        self.address = (address.hostname or "127.0.0.1", address.port or 80)
        self.sock = socket.socket()
        # A small receive buffer: the kernel fills up after little, as a slow phone would.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.received = 0

    async def open(self) -> str:
        """Send the request; return the session id from the response headers."""
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, self.address)
        body = httpx.Request("POST", "http://x/", json=CHAT).content
        head = (
            f"POST /api/chat/stream HTTP/1.1\r\nHost: {self.address[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        await loop.sock_sendall(self.sock, head.encode() + body)
        received = b""
        while b"\r\n\r\n" not in received:
            piece = await loop.sock_recv(self.sock, 1024)
            assert piece, "the server closed the connection before its headers"
            received += piece
        self.received = len(received)
        headers = received.split(b"\r\n\r\n")[0].decode("latin-1").lower().split("\r\n")
        assert headers[0].startswith("http/1.1 200")
        (session_id,) = [h.split(": ")[1] for h in headers if h.startswith("x-stream-session-id")]
        return session_id

    async def read_to_the_end(self) -> bool:
        """Read what is left; return whether the server had closed the connection."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                async with asyncio.timeout(10):
                    piece = await loop.sock_recv(self.sock, 1 << 20)
                if not piece:
                    return True
                self.received += len(piece)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.close()


def rss(live: LiveServer) -> int:
    """Return the server process's resident memory in bytes."""
    status = Path(f"/proc/{live.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


async def record_when(
    client: httpx.AsyncClient, session_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the session's record (what an operator sees) until `done`, for at most 90 s."""
    deadline = time.monotonic() + 90
    while True:
        record: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        if done(record) or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.1)


async def dropped(
    tmp_path: Path, server: str, stalled_client: Callable[[LiveServer], Any]
) -> tuple[dict[str, Any], Any, bool, dict[str, Any], str]:
    """Run a client that stops reading against `server` with a 1 s send bound, a 1 MiB log
    and a 0.5 s stall watchdog.

    Return the session's final record, the client, whether the server dropped its
    connection, `/healthz` afterwards, and the server's log.
    """
    env = bulk_env(
        tmp_path,
        STREAM_SEND_TIMEOUT_SECONDS="1",
        STREAM_LOG_MAX_BYTES=str(MIB),
        # Below the send bound: the run waits for its stuck reader longer than this, which
        # the stall watchdog must not count (its source is not silent, its reader is).
        STREAM_IDLE_TIMEOUT_SECONDS="0.5",
    )
    with serve(env, tmp_path / "server.log", server) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            stalled = stalled_client(live)
            session_id = await stalled.open()
            record = await record_when(client, session_id, lambda r: r["status"] != "running")
            closed = await stalled.read_to_the_end()
            health = (await client.get("/healthz")).json()
    return record, stalled, closed, health, live.log_text()


@pytest.mark.parametrize("server", SERVERS)
async def test_a_client_that_stops_reading_is_dropped_and_its_row_says_so(
    tmp_path: Path, server: str
) -> None:
    record, stalled, closed, health, log = await dropped(tmp_path, server, StalledClient)

    assert (record["status"], record["end_reason"]) == ("cancelled", "slow_client")
    # It stopped early: a bounded log plus the socket buffers, not the 100 MiB.
    produced = record["last_event_id"] * BulkSource.BULK_CHUNK
    assert produced < 32 * MIB
    assert record["events_sent"] < record["last_event_id"]
    assert closed  # the server dropped the connection
    assert stalled.received < produced + MIB
    assert health["live_streams"] == 0
    assert "dropping its connection" in log
    assert log_problems(log) == []


async def test_a_client_that_reads_nothing_for_60_s_of_a_100_mib_stream(tmp_path: Path) -> None:
    """The issue's scenario, on every server at once, with the default settings."""

    async def on(server: str) -> dict[str, Any]:
        env = bulk_env(tmp_path / server)
        with serve(env, tmp_path / f"{server}.log", server) as live:
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                await client.get("/healthz")
                before = peak = rss(live)
                stalled = StalledClient(live)
                session_id = await stalled.open()
                started = time.monotonic()
                while time.monotonic() - started < 60:  # reads nothing; we watch memory
                    peak = max(peak, rss(live))
                    await asyncio.sleep(0.25)
                record = (await client.get(f"/api/sessions/{session_id}")).json()
                closed = await stalled.read_to_the_end()
                # The same stream read by a client that keeps up: all 100 MiB arrive.
                received = 0
                async with client.stream("POST", "/api/chat/stream", json=CHAT) as response:
                    async for piece in response.aiter_raw():
                        received += len(piece)
                    whole = response.headers["x-stream-session-id"]
                completed = await record_when(client, whole, lambda r: r["status"] != "running")
        return {
            "growth": peak - before,
            "record": record,
            "closed": closed,
            "received": received,
            "completed": completed,
            "log": live.log_text(),
        }

    for server in SERVERS:
        (tmp_path / server).mkdir()
    results = dict(zip(SERVERS, await asyncio.gather(*map(on, SERVERS)), strict=True))

    for server, result in results.items():
        record = result["record"]
        assert (record["status"], record["end_reason"]) == ("cancelled", "slow_client"), server
        assert record["last_event_id"] * BulkSource.BULK_CHUNK < 32 * MIB, server
        assert result["growth"] < 24 * MIB, (server, result["growth"] // MIB)
        assert result["closed"], server
        assert result["received"] > BULK_BYTES, server
        assert result["completed"]["status"] == "completed", server
        assert result["completed"]["events_sent"] == BulkSource.BULK_EVENTS, server
        assert log_problems(result["log"]) == [], server


class StalledWebSocket:
    """Open a WebSocket, start a chat, read the session message, then read nothing."""

    def __init__(self, live: LiveServer) -> None:
        self.stalled = StalledClient(live)
        url = live.url.replace("http://", "ws://") + "/ws/stream/"
        self.protocol = ClientProtocol(parse_uri(url))

    async def open(self) -> str:
        """Start a chat stream; return its session id."""
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.stalled.sock, self.stalled.address)
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        await self._receive(lambda event: isinstance(event, Response))
        self.protocol.send_text(json.dumps({"type": "chat.start", "request": CHAT}).encode())
        await self._flush()
        session = await self._receive(
            lambda event: isinstance(event, Frame) and event.opcode is Opcode.TEXT
        )
        message = json.loads(session.data)
        assert message["type"] == "session", message
        return str(message["session_id"])

    async def read_to_the_end(self) -> bool:
        """Read what is left; return whether the server had closed the connection."""
        return await self.stalled.read_to_the_end()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.stalled.sock, b"".join(self.protocol.data_to_send()))

    async def _receive(self, wanted: Callable[[Any], bool]) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            piece = await loop.sock_recv(self.stalled.sock, 1024)
            assert piece, "the server closed the connection early"
            self.protocol.receive_data(piece)
            for event in self.protocol.events_received():
                if wanted(event):
                    return event


@pytest.mark.parametrize("server", SERVERS)
async def test_a_websocket_client_that_stops_reading_is_dropped(
    tmp_path: Path, server: str
) -> None:
    record, _, closed, health, log = await dropped(tmp_path, server, StalledWebSocket)

    assert (record["status"], record["end_reason"]) == ("cancelled", "slow_client")
    assert record["last_event_id"] * BulkSource.BULK_CHUNK < 32 * MIB
    assert closed
    assert health["live_streams"] == 0
    assert "dropping its connection" in log
    assert log_problems(log) == []
