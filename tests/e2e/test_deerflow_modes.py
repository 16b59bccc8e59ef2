"""deer-flow's web client, unmodified, still works in the `open` and `token` modes.

On a real uvicorn: its CORS preflight passes, and its chat and prose requests, shaped as it
sends them, stream (with the token when the mode asks for one). No user, no cookie.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer, migrate, serve, server_env

ORIGIN = "http://localhost:3000"
TOKEN = "deer-flow-shared-token"
# As deer-flow's web client sends them (see tests/transports/test_wire_pins.py).
CHAT = {
    "messages": [{"role": "user", "content": "How do deer survive winter?"}],
    "thread_id": "deer-flow-modes",
    "resources": [],
    "auto_accepted_plan": False,
    "enable_deep_thinking": False,
    "enable_background_investigation": True,
    "max_plan_iterations": 1,
    "max_step_num": 3,
    "max_search_results": 3,
    "report_style": "academic",
}
PROSE = {"prompt": "Deer are mammals.", "option": "improve"}


@pytest.fixture(scope="module", params=["open", "token"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"deer-flow-{request.param}")
    extra = {"STREAM_AUTH": "token", "STREAM_API_TOKEN": TOKEN} if request.param == "token" else {}
    env = server_env(tmp, STREAM_DEMO_DELAY_MS="0", ALLOWED_ORIGINS=ORIGIN, **extra)
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        MODES[live.url] = request.param
        yield live


MODES: dict[str, str] = {}  # server URL -> the mode it serves


def auth(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"} if MODES[server.url] == "token" else {}


@pytest.mark.parametrize(
    ("path", "body"), [("/api/chat/stream", CHAT), ("/api/prose/generate", PROSE)]
)
def test_deer_flows_requests_stream(server: LiveServer, path: str, body: dict[str, object]) -> None:
    asked = (
        "authorization, cache-control, content-type"
        if auth(server)
        else "cache-control, content-type"
    )
    preflight = httpx.options(
        f"{server.url}{path}",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    headers = {"Origin": ORIGIN, "Cache-Control": "no-cache", **auth(server)}
    response = httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.text.startswith(": stream open\n\n")
    assert "\nid: 1\n" in response.text
    assert '"reason":' not in response.text  # ended by its source, not by an error


def test_the_token_mode_refuses_a_request_without_the_token(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/api/prose/generate", json=PROSE, headers={"Origin": ORIGIN}
    )
    assert response.status_code == (401 if MODES[server.url] == "token" else 200)
