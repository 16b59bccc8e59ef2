"""Real servers for end-to-end tests: daphne processes on loopback ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


def free_port() -> int:
    """Return a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A daphne process serving the project."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

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


@contextmanager
def daphne(env: dict[str, str], log: Path) -> Iterator[LiveServer]:
    """Run daphne on a free loopback port until the block ends; stop it by PID."""
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                # As in production: a listen backlog for bursts of connections (daphne's
                # default of 50 refuses part of a burst of a few hundred).
                "--endpoint",
                f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                "project.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited at start:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"daphne did not become healthy:\n{server.log_text()}")
        time.sleep(0.05)


async def wait_for_session(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    """Return the session's record once it has ended (the server writes it within ms)."""
    deadline = time.monotonic() + 5.0
    while True:
        record: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        if record["status"] != "running" or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.02)
