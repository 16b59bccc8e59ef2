"""STREAM_AUTH=users on a real uvicorn: who may start, read, follow, resume and cancel.

Users sign in through the login page (a session cookie whose unsafe requests need the CSRF
header) or send personal API tokens made by `manage.py create_api_token`. A user sees only
their own sessions, over HTTP and WebSocket alike; anyone else is told they do not exist;
staff with the permission see and cancel them all.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, cast

import httpx
import pytest
import websockets

from tests.support.accounts import (
    PASSWORD,
    create_token,
    create_user,
    csrf_header,
    revoke_tokens,
    sign_in,
)
from tests.support.live import LiveServer, migrate, serve, server_env

QUESTION = {"messages": [{"role": "user", "content": "How do deer survive winter?"}]}
UNKNOWN = "6d0e8a52-0000-4000-8000-000000000000"
NO_SESSION = {"detail": "No such session."}
SIGN_IN = {"detail": "Sign in, or send a personal API token."}


class Site:
    """The live server, its environment, and the tokens of its users."""

    def __init__(self, server: LiveServer, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.tokens: dict[str, str] = {}

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.server.log.parent / "live.sqlite3") as conn:
            return conn.execute(sql, params).fetchall()

    def owner_of(self, session_id: str) -> str | None:
        found = self.rows(
            "SELECT u.username FROM streaming_streamsession s LEFT JOIN auth_user u "
            "ON u.id = s.owner_id WHERE s.id = ?",
            session_id.replace("-", ""),
        )
        return found[0][0] if found else None

    def session_count(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM streaming_streamsession")[0][0])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("access")
    env = server_env(tmp, STREAM_AUTH="users", STREAM_DEMO_DELAY_MS="600000")
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        site = Site(live, env)
        for name in ("alice", "bob"):
            create_user(env, name)
        create_user(env, "staff", manage_all=True)
        for name in ("alice", "bob", "staff"):
            site.tokens[name] = create_token(env, name)
        yield site


@contextlib.asynccontextmanager
async def live_stream(client: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[str]:
    """Open an idle chat stream; yield its session id while it stays open."""
    async with client.stream("POST", "/api/chat/stream", json=QUESTION, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        reader = cast(AsyncGenerator[bytes, None], r.aiter_bytes())
        try:
            assert (await anext(reader)).startswith(b": stream open")
            yield r.headers["x-stream-session-id"]
        finally:
            await reader.aclose()


async def ws_resume(site: Site, username: str, session_id: str, *, cancel: bool = False) -> Any:
    """Resume `session_id` over a WebSocket as `username` (then cancel it, if asked).

    Return the messages received until an `error` or the stream's `end`.
    """
    url = site.server.url.replace("http://", "ws://") + "/ws/stream/"
    received: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=site.auth(username)) as ws:
        await ws.send(json.dumps({"type": "resume", "session_id": session_id}))
        if cancel:
            await ws.send(json.dumps({"type": "cancel"}))
        while not received or received[-1]["type"] not in ("error", "end"):
            received.append(json.loads(await ws.recv()))
    return received


async def test_nobody_signed_in_gets_401_and_opens_nothing(site: Site) -> None:
    before = site.session_count()
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        response = await client.post("/api/chat/stream", json=QUESTION)
    assert response.status_code == 401
    assert response.json() == SIGN_IN
    assert response.headers["www-authenticate"] == "Bearer"
    assert site.session_count() == before


async def test_a_cookie_post_without_csrf_gets_403_json(site: Site) -> None:
    before = site.session_count()
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        await sign_in(client, "alice")
        response = await client.post("/api/chat/stream", json=QUESTION)
        cancel = await client.post(f"/api/sessions/{UNKNOWN}/cancel")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith("CSRF check failed")
    assert cancel.status_code == 403
    assert site.session_count() == before


async def test_the_sign_in_form_without_its_csrf_token_gets_403(site: Site) -> None:
    # Not exempt: Django's CSRF check runs in the request's thread (transports/middleware.py).
    form = {"username": "alice", "password": PASSWORD, "next": "/"}
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        await client.get("/login/")  # the CSRF cookie, but the form's token is left out
        refused = await client.post("/login/", data=form)
        assert "sessionid" not in client.cookies
        await sign_in(client, "alice")  # with the token, the same form signs in
        assert "sessionid" in client.cookies
    assert refused.status_code == 403
    assert "CSRF verification failed" in refused.text


async def test_a_cookie_post_from_another_site_gets_403_even_with_the_token(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        await sign_in(client, "alice")
        headers = {**csrf_header(client), "Origin": "http://evil.example"}
        response = await client.post("/api/chat/stream", json=QUESTION, headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed")


async def test_a_signed_in_browser_streams_and_owns_its_session(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        await sign_in(client, "alice")
        headers = {**csrf_header(client), "Origin": site.server.url}
        async with live_stream(client, headers) as session_id:
            assert site.owner_of(session_id) == "alice"
            record = await client.get(f"/api/sessions/{session_id}")  # GET: no CSRF needed
            assert record.status_code == 200


async def test_a_token_streams_records_its_owner_and_its_last_use(site: Site) -> None:
    async with (
        httpx.AsyncClient(base_url=site.server.url, timeout=30) as client,
        live_stream(client, site.auth("bob")) as session_id,
    ):
        assert site.owner_of(session_id) == "bob"
    [(last_used,)] = site.rows(
        "SELECT t.last_used_at FROM streaming_apitoken t JOIN auth_user u ON u.id = t.user_id "
        "WHERE u.username = 'bob'"
    )
    assert last_used is not None


async def test_a_revoked_token_gets_401(site: Site) -> None:
    create_user(site.env, "carol")
    token = {"Authorization": f"Bearer {create_token(site.env, 'carol')}"}
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        assert (await client.get(f"/api/sessions/{UNKNOWN}", headers=token)).status_code == 404
        revoke_tokens(site.env, "carol")
        before = site.session_count()
        refused = await client.post("/api/chat/stream", json=QUESTION, headers=token)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Missing or invalid API token."}
    assert site.session_count() == before


async def test_another_user_cannot_reach_a_session_but_staff_can(site: Site) -> None:
    async with (
        httpx.AsyncClient(base_url=site.server.url, timeout=30) as client,
        live_stream(client, site.auth("alice")) as session_id,
    ):
        path = f"/api/sessions/{session_id}"
        bob = site.auth("bob")
        # Bob: read, follow, resume, cancel over HTTP, resume over the WebSocket: no such session.
        for method, url, headers in [
            ("GET", path, bob),
            ("GET", f"{path}/stream", bob),
            ("GET", f"{path}/stream", {**bob, "Last-Event-ID": "0"}),
            ("POST", f"{path}/cancel", bob),
        ]:
            refused = await client.request(method, url, headers=headers)
            assert (refused.status_code, refused.json()) == (404, NO_SESSION), (method, url)
        assert await ws_resume(site, "bob", session_id) == [{"type": "error", **NO_SESSION}]
        assert site.rows(
            "SELECT status FROM streaming_streamsession WHERE id = ?", session_id.replace("-", "")
        ) == [("running",)]
        # Staff with the permission: read and follow over HTTP, resume and cancel over WS.
        staff = site.auth("staff")
        assert (await client.get(path, headers=staff)).json()["status"] == "running"
        async with client.stream("GET", f"{path}/stream", headers=staff) as followed:
            assert followed.status_code == 200
        received = await ws_resume(site, "staff", session_id, cancel=True)
        assert received[-2]["data"]["reason"] == "cancelled"
        assert received[-1] == {"type": "end", "status": "cancelled", "reason": "user_cancel"}


async def test_staff_cancel_any_session_over_http_and_the_owner_their_own(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        for canceller in ("staff", "alice"):
            async with live_stream(client, site.auth("alice")) as session_id:
                path = f"/api/sessions/{session_id}"
                answer = await client.post(f"{path}/cancel", headers=site.auth(canceller))
                assert answer.status_code == 202, canceller
                assert (await client.get(path, headers=site.auth("alice"))).status_code == 200


async def test_a_user_may_resume_their_own_session_over_the_websocket(site: Site) -> None:
    async with (
        httpx.AsyncClient(base_url=site.server.url, timeout=30) as client,
        live_stream(client, site.auth("alice")) as session_id,
    ):
        received = await ws_resume(site, "alice", session_id, cancel=True)
        assert received[-1] == {"type": "end", "status": "cancelled", "reason": "user_cancel"}


async def test_a_websocket_without_credentials_is_refused(site: Site) -> None:
    url = site.server.url.replace("http://", "ws://") + "/ws/stream/"
    # Closed before the handshake completes, which uvicorn answers with HTTP 403.
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403


async def test_a_signed_in_browsers_websocket_runs_as_its_user(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        await sign_in(client, "alice")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    url = site.server.url.replace("http://", "ws://") + "/ws/stream/"
    headers = {"Cookie": cookie, "Origin": site.server.url}
    async with websockets.connect(url, additional_headers=headers) as ws:
        request = {"prompt": "Deer are mammals.", "option": "fix"}
        await ws.send(json.dumps({"type": "prose.start", "request": request}))
        opened = json.loads(await ws.recv())
        assert opened["type"] == "session"
        assert site.owner_of(opened["session_id"]) == "alice"
