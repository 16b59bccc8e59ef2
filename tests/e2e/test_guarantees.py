"""Django's guarantees hold on the stream endpoints, whose bodies stream after its handler.

On a real uvicorn, as in production: host validation, CORS as django-cors-headers decides
it, SecurityMiddleware's headers, the token, the admission limits, and the session row
committed before the first byte.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import cast

import httpx
import pytest

from tests.support.live import LiveServer, migrate, serve, server_env, session_states

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"messages": [{"role": "user", "content": "How do deer survive winter?"}]}
ALLOWED_ORIGIN = "http://localhost:3000"
PER_CLIENT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("guarantees")
    env = server_env(
        tmp,
        STREAM_DEMO_DELAY_MS="600000",  # every stream stays live and idle
        STREAM_API_TOKEN=TOKEN,
        STREAM_MAX_STREAMS_PER_CLIENT=str(PER_CLIENT),
        ALLOWED_ORIGINS=ALLOWED_ORIGIN,
        DEBUG="false",
        SECRET_KEY="guarantees-only-not-secret-0123456789abcdefghijklmnopqrstuv",
        ALLOWED_HOSTS="127.0.0.1",
    )
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live


def rows(server: LiveServer) -> int:
    return len(session_states(server.log.parent / "live.sqlite3"))


@contextlib.asynccontextmanager
async def opened(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[tuple[httpx.Response, bytes]]:
    """Open a chat stream; yield its response and first chunk while it stays open."""
    async with client.stream("POST", "/api/chat/stream", json=QUESTION, headers=headers) as r:
        reader = cast(AsyncGenerator[bytes, None], r.aiter_bytes())
        try:
            yield r, await anext(reader, b"")
        finally:
            await reader.aclose()


async def test_a_host_not_allowed_gets_400_and_opens_nothing(server: LiveServer) -> None:
    before = rows(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/api/chat/stream", json=QUESTION, headers={**AUTH, "Host": "evil.example"}
        )
    assert response.status_code == 400
    assert rows(server) == before


async def test_cors_as_django_cors_headers_decides(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with opened(client, {**AUTH, "Origin": ALLOWED_ORIGIN}) as (allowed, _):
            assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            assert allowed.headers["access-control-allow-credentials"] == "true"
            exposed = allowed.headers["access-control-expose-headers"].lower()
            assert "x-stream-session-id" in exposed
        async with opened(client, {**AUTH, "Origin": "http://evil.example"}) as (refused, _):
            assert "access-control-allow-origin" not in refused.headers


async def test_security_middleware_headers(server: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        opened(client, AUTH) as (response, first),
    ):
        assert first.startswith(b": stream open\n\n")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cross-origin-opener-policy"] == "same-origin"
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


async def test_the_token_is_required_and_nothing_opens_without_it(server: LiveServer) -> None:
    before = rows(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/api/chat/stream", json=QUESTION)
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing or invalid API token."}
    assert response.headers["www-authenticate"] == "Bearer"
    assert rows(server) == before


async def test_admission_limits_hold(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(PER_CLIENT):
                response, _first = await stack.enter_async_context(opened(client, AUTH))
                assert response.status_code == 200
            refused = await client.post("/api/chat/stream", json=QUESTION, headers=AUTH)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"


async def test_the_row_is_committed_before_the_first_byte(server: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        opened(client, AUTH) as (response, first),
        httpx.AsyncClient(base_url=server.url, timeout=30) as other,
    ):
        session_id = response.headers["x-stream-session-id"]
        # Read from another connection the moment the first byte arrived.
        record = (await other.get(f"/api/sessions/{session_id}", headers=AUTH)).json()
    assert first == b": stream open\n\n"
    assert (record["id"], record["status"]) == (session_id, "running")
