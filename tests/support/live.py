"""Real servers for end-to-end tests: daphne or uvicorn processes on loopback ports."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
# The ASGI servers the project runs on; end-to-end tests may be parametrised over them.
SERVERS = ("daphne", "uvicorn")


def free_port() -> int:
    """Return a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A server process serving the project."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    name: str = "daphne"

    def log_text(self) -> str:
        """Return what the server logged so far."""
        return self.log.read_text(errors="replace")


def migrate(env: dict[str, str]) -> None:
    """Create the schema of the database `env` points at."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def server_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """Return an environment for a server process with its own SQLite database."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STREAM_", "DJANGO_", "PYTEST"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'live.sqlite3'}",
            "DEBUG": "true",
            "LOG_LEVEL": "INFO",
            "REDIS_URL": "",
        }
    )
    env.update(overrides)
    return env


def procfile_command() -> list[str]:
    """Return the Procfile's `web:` command, split as a shell would."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return shlex.split(line.removeprefix("web:"))
    raise AssertionError("the Procfile has no web: process")


def server_command(server: str, port: int) -> list[str]:
    """Return the command line that runs `server` on a loopback `port`, as in production."""
    if server == "daphne":
        # As in production: a listen backlog for bursts of connections (daphne's default
        # of 50 refuses part of a burst of a few hundred).
        endpoint = f"tcp:port={port}:interface=127.0.0.1:backlog=1024"
        return [sys.executable, "-m", "daphne", "--endpoint", endpoint, "project.asgi:application"]
    if server == "uvicorn":  # Production's server: its command, from the Procfile.
        command = [
            "127.0.0.1" if arg == "0.0.0.0" else str(port) if arg == "$PORT" else arg
            for arg in procfile_command()
        ]
        assert command[0] == "uvicorn", command
        return [sys.executable, "-m", *command]
    raise ValueError(f"unknown server {server!r}; one of {SERVERS}")


@contextmanager
def serve(
    env: dict[str, str], log: Path, server: str = "daphne", *, args: tuple[str, ...] = ()
) -> Iterator[LiveServer]:
    """Run `server` (with `args` added) on a free loopback port until the block ends; stop
    it by PID."""
    port = free_port()
    command = [*server_command(server, port), *args]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    live = LiveServer(f"http://127.0.0.1:{port}", process, log, server)
    try:
        _wait_healthy(live)
        yield live
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def two_workers(env: dict[str, str], tmp: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Run two uvicorn servers on `env` (its database and Redis): two workers of one site."""
    first_log, second_log = tmp / "first.log", tmp / "second.log"
    with serve(env, first_log, "uvicorn") as first, serve(env, second_log, "uvicorn") as second:
        yield first, second


@contextmanager
def daphne(env: dict[str, str], log: Path) -> Iterator[LiveServer]:
    """Run daphne on a free loopback port until the block ends; stop it by PID."""
    with serve(env, log, "daphne") as live:
        yield live


def _wait_healthy(live: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if live.process.poll() is not None:
            raise RuntimeError(f"{live.name} exited at start:\n{live.log_text()}")
        try:
            if httpx.get(f"{live.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{live.name} did not become healthy:\n{live.log_text()}")
        time.sleep(0.05)


async def wait_for_session(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    """Return the session's record once it has ended (the server writes it within ms)."""
    deadline = time.monotonic() + 5.0
    while True:
        record: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        if record["status"] != "running" or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.02)


async def hang_up_after(
    client: httpx.AsyncClient, request: dict[str, Any], events: int
) -> dict[str, Any]:
    """Post a chat stream, close the connection after `events` events; return its record."""
    async with client.stream("POST", "/api/chat/stream", json=request) as response:
        session_id = response.headers["x-stream-session-id"]
        seen = b""
        async for chunk in response.aiter_bytes():
            seen += chunk
            if seen.count(b"\nid: ") >= events:
                break
    # Leaving the block closed the connection mid-stream.
    return await wait_for_session(client, session_id)


def session_states(db: Path) -> list[tuple[str, str]]:
    """Return every session row's (status, end_reason) from the SQLite database `db`."""
    with sqlite3.connect(db) as conn:
        rows: list[tuple[str, str]] = conn.execute(
            "SELECT status, end_reason FROM streaming_streamsession"
        ).fetchall()
    return rows


async def read_until_closed(response: httpx.Response) -> bytes:
    """Return what the server sent on `response` until it ended or closed it."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
    except httpx.RemoteProtocolError:
        pass  # The server may close before the chunked body's end.
    return body


async def open_sse_streams(
    client: httpx.AsyncClient, request: dict[str, Any], count: int, group: asyncio.TaskGroup
) -> list[asyncio.Task[bytes]]:
    """Start `count` chat streams in `group`; return once each answered, with their readers.

    The group cancels the readers if the test fails before they end, leaving none behind.
    """
    opened = [asyncio.get_running_loop().create_future() for _ in range(count)]

    async def stream(answered: asyncio.Future[None]) -> bytes:
        async with client.stream("POST", "/api/chat/stream", json=request) as response:
            answered.set_result(None)
            return await read_until_closed(response)

    tasks = [group.create_task(stream(answered)) for answered in opened]
    await wait_started(tasks, opened)
    return tasks


async def wait_started(tasks: list[asyncio.Task[Any]], started: list[asyncio.Future[None]]) -> None:
    """Wait until each task has set its `started` future; raise if one failed before."""
    for task, future in zip(tasks, started, strict=True):
        await asyncio.wait({task, future}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # A stream that failed to open fails the test here, not in a hang.


async def terminate(
    live: LiveServer, *, within: float, signum: signal.Signals = signal.SIGTERM
) -> None:
    """Send `signum`; raise `subprocess.TimeoutExpired` unless the process exits `within` s."""
    live.process.send_signal(signum)
    await asyncio.to_thread(live.process.wait, within)


# A log line at level ERROR, in Django's format or uvicorn's ("ERROR:    ..."), or a traceback.
_PROBLEM = re.compile(r"(^|\s)ERROR(:|\s)|Traceback")


def log_problems(text: str) -> list[str]:
    """Return the lines of a server log that report an error or a traceback."""
    return [line for line in text.splitlines() if _PROBLEM.search(line)]
