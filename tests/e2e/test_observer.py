"""Observer links on a real uvicorn, watched from Chromium's plain `EventSource`.

The owner makes a link; a browser with no cookie and no token follows the stream through
it, live and from the start; it cannot cancel with it; an expired or forged link is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import override_settings
from playwright.sync_api import Browser, Page, sync_playwright

from streaming.api.observers import make_link
from tests.support.accounts import create_token, create_user
from tests.support.browser import FOLLOW, launch
from tests.support.live import LiveServer, migrate, serve, server_env
from tests.support.sseparse import parse

SECRET_KEY = "observer-links-only-not-secret-0123456789abcdefghijklmnopqrstuv"
CHAT = {"messages": [{"role": "user", "content": "How do deer survive winter?"}]}
PROSE = {"prompt": "Deer are mammals. They live in forests.", "option": "longer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("observer")
    env = server_env(
        tmp,
        STREAM_AUTH="users",
        SECRET_KEY=SECRET_KEY,
        STREAM_DEMO_DELAY_MS="20",
        # Chat streams emit one event, then idle: live for as long as the test needs.
        STREAM_CHAT_SOURCE="tests.support.sources.IdleSource",
        STREAM_ON_DISCONNECT="continue",  # the owner may hang up; the stream goes on
    )
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        create_user(env, "alice")
        yield live, create_token(env, "alice")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, server: tuple[LiveServer, str]) -> Iterator[Page]:
    """A tab with no cookie, on the server's own sign-in page (so EventSource is same-origin)."""
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{server[0].url}/login/")
    yield tab
    context.close()


def start(server: LiveServer, token: str, path: str, body: dict[str, Any]) -> str:
    """Start a stream as its owner, hang up once it answered; return its session id."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.stream("POST", f"{server.url}{path}", json=body, headers=auth) as response:
        assert response.status_code == 200
        return response.headers["x-stream-session-id"]


def observer_link(server: LiveServer, token: str, session_id: str) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(f"{server.url}/api/sessions/{session_id}/observer-link", headers=auth)
    assert answer.status_code == 200, answer.text
    link: dict[str, str] = answer.json()
    return link


def test_an_observer_link_streams_a_live_session_in_eventsource_but_cannot_cancel(
    server: tuple[LiveServer, str], page: Page
) -> None:
    live, token = server
    session_id = start(live, token, "/api/chat/stream", CHAT)
    link = observer_link(live, token, session_id)
    assert link["url"].startswith(f"{live.url}/api/sessions/{session_id}/observe?link=")

    followed = page.evaluate(FOLLOW, [link["url"], 1])
    assert followed["received"] == [{"id": "1", "data": "first "}]

    # The link is no key to anything that acts: cancel refuses it, however it is sent.
    cancel = f"{live.url}/api/sessions/{session_id}/cancel"
    query = link["url"].partition("?")[2]
    secret = query.removeprefix("link=")
    for attempt in (f"{cancel}?{query}", f"{cancel}?token={secret}"):
        status = page.evaluate(
            "(url) => fetch(url, {method: 'POST'}).then((r) => r.status)", attempt
        )
        assert status == 401, attempt
    refused = httpx.post(cancel, headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
    record = httpx.get(
        f"{live.url}/api/sessions/{session_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert record.json()["status"] == "running"


def test_an_observer_sees_the_whole_stream_as_its_owner_does(
    server: tuple[LiveServer, str], page: Page
) -> None:
    live, token = server
    session_id = start(live, token, "/api/prose/generate", PROSE)
    link = observer_link(live, token, session_id)

    followed = page.evaluate(FOLLOW, [link["url"], 0])
    owner = httpx.get(
        f"{live.url}/api/sessions/{session_id}/stream",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    owners = [(frame.id, frame.data) for frame in parse(owner.content) if frame.event == "message"]
    assert len(owners) > 5
    assert [(m["id"], m["data"]) for m in followed["received"]] == owners


def test_an_expired_or_forged_link_is_refused(server: tuple[LiveServer, str], page: Page) -> None:
    live, token = server
    session_id = start(live, token, "/api/chat/stream", CHAT)
    with override_settings(SECRET_KEY=SECRET_KEY, STREAM_OBSERVER_LINK_SECONDS=0):
        expired, _ = make_link(uuid.UUID(session_id))
    with override_settings(SECRET_KEY=SECRET_KEY):
        other, _ = make_link(uuid.uuid4())  # a real link, to another session
    observe = f"{live.url}/api/sessions/{session_id}/observe"
    cases = {
        expired: (410, "This observer link has expired."),
        other: (401, "This observer link is not valid."),
        expired[:-3] + "abc": (401, "This observer link is not valid."),
    }
    for link, (status, detail) in cases.items():
        answer = httpx.get(observe, params={"link": link})
        assert (answer.status_code, answer.json()) == (status, {"detail": detail})
        in_browser = page.evaluate(FOLLOW, [f"{observe}?link={link}", 0])
        assert in_browser == {"received": [], "state": 2}  # EventSource.CLOSED: no retry
