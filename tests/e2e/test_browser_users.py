"""The web client with STREAM_AUTH=users, in Chromium against a real uvicorn.

It sends a visitor to the sign-in page, shows who is signed in, streams with the session
cookie and the CSRF header (stop included), and copies an observer link that a browser
with no cookie can follow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.accounts import PASSWORD, create_user
from tests.support.browser import FOLLOW, launch
from tests.support.live import LiveServer, migrate, serve, server_env

expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("browser-users")
    env = server_env(tmp, STREAM_AUTH="users", STREAM_DEMO_DELAY_MS="150")
    migrate(env)
    with serve(env, tmp / "uvicorn.log", "uvicorn") as live:
        create_user(env, "alice")
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login/?next=/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("#who")).to_have_text("Signed in as alice Sign out")


def start_prose(page: Page, transport: str) -> None:
    page.check(f"input[name=transport][value={transport}]")
    page.click("#tab-prose")
    page.fill("#prose-text", "Deer are mammals. They live in forests.")
    page.select_option("#prose-option", "longer")
    page.click("#generate")
    expect(page.locator("#session-status")).to_have_text("streaming")


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_a_signed_in_user_streams_and_stops(page: Page, server: LiveServer, transport: str) -> None:
    sign_in(page, server)
    start_prose(page, transport)
    page.click("#stop")
    expect(page.locator("#session-status")).to_have_text("cancelled")
    expect(page.locator("#session-reason")).to_have_text("cancelled by a user")


def test_the_client_copies_an_observer_link_another_browser_can_follow(
    page: Page, server: LiveServer, browser: Browser
) -> None:
    sign_in(page, server)
    start_prose(page, "sse")
    page.click("#share")
    expect(page.locator("#observer")).to_be_visible()
    url = page.input_value("#observer-url")
    session_id = page.text_content("#session-id")
    assert url.startswith(f"{server.url}/api/sessions/{session_id}/observe?link=")

    stranger = browser.new_context()  # no cookie, no token
    try:
        tab = stranger.new_page()
        tab.goto(f"{server.url}/login/")
        followed = tab.evaluate(FOLLOW, [url, 3])
    finally:
        stranger.close()
    assert [message["id"] for message in followed["received"]] == ["1", "2", "3"]
    page.click("#stop")
    expect(page.locator("#session-status")).to_have_text("cancelled")


def test_signing_out_sends_the_next_visit_to_the_sign_in_page(
    page: Page, server: LiveServer
) -> None:
    sign_in(page, server)
    page.click("#sign-out")
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login/?next=/")
