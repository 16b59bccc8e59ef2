"""No page on another site starts a stream: on a real uvicorn, only JSON bodies are read.

The content types a browser sends cross-site without a CORS preflight (`text/plain`,
forms, none at all) get 415 before anything runs, and no session row is created; deer-flow's
JSON requests still stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer, migrate, serve, server_env, session_states

EVIL = "http://evil.example"
PROSE = b'{"prompt":"Deer are mammals.","option":"fix"}'
CHAT = b'{"messages":[{"role":"user","content":"How do deer survive winter?"}]}'
SIMPLE_CONTENT_TYPES = {
    "text/plain": "text/plain;charset=UTF-8",
    "form": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data; boundary=deer",
    "none": None,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("cross-site")
    env = server_env(tmp, STREAM_DEMO_DELAY_MS="0")  # open mode: no token, no users
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        yield live


def rows(server: LiveServer) -> int:
    return len(session_states(server.log.parent / "live.sqlite3"))


@pytest.mark.parametrize(
    ("path", "body"), [("/api/prose/generate", PROSE), ("/api/chat/stream", CHAT)]
)
@pytest.mark.parametrize("content_type", list(SIMPLE_CONTENT_TYPES))
def test_a_cross_site_simple_post_is_refused_and_records_nothing(
    server: LiveServer, path: str, body: bytes, content_type: str
) -> None:
    headers = {"Origin": EVIL}
    if (value := SIMPLE_CONTENT_TYPES[content_type]) is not None:
        headers["Content-Type"] = value
    before = rows(server)
    # httpx adds no Content-Type to raw `content`: "none" really sends none.
    response = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)
    assert response.status_code == 415
    assert response.json() == {
        "detail": "Request body must be JSON: send it with Content-Type: application/json."
    }
    assert "content-type" in response.request.headers or content_type == "none"
    assert rows(server) == before


def test_an_empty_json_body_is_refused_as_fastapi_refuses_it(server: LiveServer) -> None:
    before = rows(server)
    response = httpx.post(
        f"{server.url}/api/chat/stream",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required"}]
    }
    assert rows(server) == before


def test_deer_flows_json_post_still_streams(server: LiveServer) -> None:
    before = rows(server)
    response = httpx.post(
        f"{server.url}/api/prose/generate",
        content=PROSE,
        headers={"Content-Type": "application/json", "Origin": "http://localhost:3000"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.text.startswith(": stream open\n\n")
    assert "\nevent: error\n" not in response.text
    assert rows(server) == before + 1
