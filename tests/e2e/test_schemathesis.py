"""schemathesis on a real daphne, in each STREAM_AUTH mode: no 5xx, answers as documented.

Run by hand against any server (`st` is schemathesis's short name):

    st run http://127.0.0.1:8000/api/openapi.json --checks all \
        --exclude-checks negative_data_rejection --exclude-path / --generation-allow-x00 false

On a suite run with PostgreSQL (`DATABASE_URL=postgres://...`), the server gets a fresh
PostgreSQL database of its own and the suite's Redis, as in production.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import services
from tests.support.accounts import create_token, create_user
from tests.support.live import LiveServer, daphne, migrate, server_env

RUN_TIMEOUT = 150.0
ARGUMENTS = [
    # Every check, but: the views also take what pydantic's lax mode converts (`"true"` for
    # true, as deer-flow does), and read `Last-Event-ID` before `?last_event_id=`, so some
    # data the document calls invalid is rightly accepted.
    "--checks=all",
    "--exclude-checks=negative_data_rejection",
    # The web client's page, not the API (Django's CSRF check answers its unsafe methods).
    "--exclude-path=/",
    # A NUL nested in `mcp_settings` is refused (422), which the document cannot say.
    "--generation-allow-x00=false",
    "--max-examples=10",
    "--seed=1",
    "--generation-database=none",
    "--workers=1",
    "--request-timeout=10",
    "--no-color",
]
# A resume's documented 410 is an answer to a valid request (what is kept is server state).
CONFIG = Path(__file__).with_name("schemathesis.toml")


SHARED_TOKEN = "schemathesis-shared-token"


@pytest.fixture(scope="module", params=["open", "token", "users"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, list[str]]]:
    """A server in each STREAM_AUTH mode, and the arguments that let schemathesis in."""
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"schemathesis-{mode}")
    overrides = {"STREAM_DEMO_DELAY_MS": "0", "STREAM_AUTH": mode}
    if mode == "token":
        overrides["STREAM_API_TOKEN"] = SHARED_TOKEN
    with ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL", "")
        if database_url.startswith(("postgres://", "postgresql://")):
            overrides["DATABASE_URL"] = stack.enter_context(
                services.postgres_database("schemathesis", database_url)
            )
            overrides["REDIS_URL"] = os.environ.get("REDIS_URL", "")
        env = server_env(tmp, **overrides)
        migrate(env)
        token = ""
        if mode == "token":
            token = SHARED_TOKEN
        elif mode == "users":
            create_user(env, "schemathesis")
            token = create_token(env, "schemathesis")
        arguments = [f"--header=Authorization: Bearer {token}"] if token else []
        yield stack.enter_context(daphne(env, tmp / "daphne.log")), arguments


def run_schemathesis(server: LiveServer, tmp: Path, arguments: list[str]) -> list[dict[str, Any]]:
    """Run schemathesis on the server's document; return every exchange (HAR entries)."""
    har = tmp / "exchanges.har"
    command = [sys.executable, "-m", "schemathesis.cli", f"--config-file={CONFIG}", "run"]
    command.append(f"{server.url}/api/openapi.json")
    command += [*ARGUMENTS, *arguments, "--report=har", f"--report-har-path={har}"]
    # Its working directory takes its crash cache (.schemathesis/), out of the repository.
    result = subprocess.run(
        command, cwd=tmp, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    entries: list[dict[str, Any]] = json.loads(har.read_text())["log"]["entries"]
    return entries


def operation(entry: dict[str, Any]) -> tuple[str, str, int]:
    """Return the exchange's method, documented path and status."""
    path = urlsplit(entry["request"]["url"]).path
    path = re.sub(r"^/api/sessions/[^/]*", "/api/sessions/{session_id}", path)
    return entry["request"]["method"], path, entry["response"]["status"]


def is_twisted_bad_request(entry: dict[str, Any]) -> bool:
    """Whether daphne's HTTP layer (Twisted) refused a malformed multipart body itself.

    It answers a bare 400, without headers, before the application sees the request.
    """
    content_type = next(
        (h["value"] for h in entry["request"]["headers"] if h["name"].lower() == "content-type"),
        "",
    )
    response = entry["response"]
    return (
        content_type.startswith("multipart/form-data")
        and response["status"] == 400
        and not response["headers"]
    )


def test_schemathesis_finds_no_failure(
    server: tuple[LiveServer, list[str]], tmp_path: Path
) -> None:
    live, arguments = server
    entries = run_schemathesis(live, tmp_path, arguments)

    for entry in entries:
        response = entry["response"]
        assert response["status"] < 500, entry
        if response["status"] >= 400 and not is_twisted_bad_request(entry):
            assert response["content"]["mimeType"] == "application/json", entry
            assert json.loads(response["content"]["text"])["detail"], entry
    seen = Counter(operation(entry) for entry in entries)
    # It reached the views' logic: whole streams, real sessions (through the document's
    # links from a stream's X-Stream-Session-Id), refusals of each kind.
    for expected in [
        ("POST", "/api/chat/stream", 200),
        ("POST", "/api/chat/stream", 422),
        ("POST", "/api/prose/generate", 200),
        ("POST", "/api/prose/generate", 422),
        ("GET", "/api/sessions/{session_id}", 200),
        ("GET", "/api/sessions/{session_id}", 404),
        ("GET", "/api/sessions/{session_id}/stream", 200),
        ("GET", "/api/sessions/{session_id}/stream", 422),
        ("POST", "/api/sessions/{session_id}/cancel", 409),
        ("GET", "/api/config", 200),
        ("GET", "/healthz", 200),
        ("PUT", "/healthz", 405),
    ]:
        assert seen[expected], (expected, sorted(seen))
    log = live.log_text()
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
