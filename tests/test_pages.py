"""The web client's page: same-origin, nothing fetched from elsewhere, admin link for staff."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from tests.support.htmlpage import Page

pytestmark = pytest.mark.django_db

STATIC_FILES = [
    "/static/streaming/client.css",
    "/static/streaming/client.js",
    "/static/streaming/transport.js",
    "/static/streaming/workflow.js",
    "/static/streaming/markdown.js",
]


@pytest.fixture(autouse=True)
def _static_files_from_apps(settings) -> None:
    """Serve static files from the apps, as in development (no collectstatic in tests)."""
    settings.SERVESTATIC_AUTOREFRESH = True
    settings.SERVESTATIC_USE_FINDERS = True


def client_config(client: Client) -> dict[str, object]:
    response = client.get("/")
    assert response.status_code == 200
    data: dict[str, object] = json.loads(Page(response.content).one(id="client-config").children[0])
    return data


def test_page_loads_only_its_own_assets(client: Client) -> None:
    response = client.get("/")
    page = Page(response.content)

    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    urls = [
        value
        for node in page.all()
        for key, value in node.attributes
        if key in ("src", "href") and value
    ]
    assert sorted(urls) == sorted(
        [
            "#",
            "/static/streaming/favicon.svg",
            "/static/streaming/client.css",
            "/static/streaming/client.js",
        ]
    )
    for url in STATIC_FILES:
        assert client.get(url).status_code == 200, url
        body = Path(str(finders.find(url.removeprefix("/static/")))).read_text()
        imports = re.findall(r'from "([^"]+)"', body)
        assert all(path.startswith("./") for path in imports), (url, imports)
        assert not re.search(r"""(?:fetch\(|url\()\s*["']?(?:https?:)?//""", body), url


def test_favicon_ico_answers_with_the_icon_the_page_links(client: Client) -> None:
    response = client.get("/favicon.ico", follow=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    icon_file = Path(str(finders.find("streaming/favicon.svg")))
    assert icon_file.read_text().startswith("<svg")
    assert response["Content-Length"] == str(icon_file.stat().st_size)
    (icon,) = [
        node
        for node in Page(client.get("/").content).all(tag="link")
        if ("rel", "icon") in node.attributes
    ]
    assert dict(icon.attributes)["href"] == response.redirect_chain[-1][0]


def test_anonymous_visitors_get_no_admin_link(client: Client) -> None:
    config = client_config(client)
    assert config["adminSessionUrl"] == ""
    assert config["tokenRequired"] is False
    assert config["endReasons"] == {
        "": "none",
        "superseded": "superseded by a newer run",
        "client_disconnect": "client disconnected",
        "slow_client": "client stopped reading",
        "user_cancel": "cancelled by a user",
        "timeout": "deadline passed",
        "error": "the source failed",
        "stalled": "the source went silent",
        "server_shutdown": "server shut down",
        "worker_lost": "worker lost",
    }


def test_staff_get_the_admin_link_of_a_session(client: Client) -> None:
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)
    config = client_config(client)
    assert config["adminSessionUrl"] == (
        f"/admin/streaming/streamsession/{config['idPlaceholder']}/change/"
    )


def test_users_who_are_not_staff_get_no_admin_link(client: Client) -> None:
    client.force_login(User.objects.create_user("visitor", password="pw"))
    assert client_config(client)["adminSessionUrl"] == ""


@override_settings(STREAM_API_TOKEN="secret")
def test_page_asks_for_the_token_when_the_api_needs_one(client: Client) -> None:
    assert client_config(client)["tokenRequired"] is True


@override_settings(STREAM_AUTH="users")
def test_in_users_mode_a_visitor_is_sent_to_sign_in(client: Client) -> None:
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/")
    login = client.get("/login/")
    assert login.status_code == 200
    assert "default-src 'self'" in login["Content-Security-Policy"]
    assert Page(login.content).one(id="login-form")


@override_settings(STREAM_AUTH="users")
def test_in_users_mode_the_page_knows_who_is_signed_in(client: Client) -> None:
    client.force_login(User.objects.create_user("alice", password="pw"))
    config = client_config(client)
    assert (config["auth"], config["user"], config["tokenRequired"]) == ("users", "alice", False)
    assert config["csrfToken"]


def test_in_open_mode_the_page_asks_nobody_to_sign_in(client: Client) -> None:
    config = client_config(client)
    assert (config["auth"], config["user"], config["csrfToken"]) == ("open", "", "")


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/"])
def test_the_admin_links_the_same_icon(admin_client: Client, client: Client, path: str) -> None:
    page = client.get(path) if path.endswith("login/") else admin_client.get(path)
    (icon,) = [
        node for node in Page(page.content).all(tag="link") if ("rel", "icon") in node.attributes
    ]
    assert dict(icon.attributes)["href"] == "/static/streaming/favicon.svg"
    # Still the admin's own page around it.
    assert b"Django administration" in page.content
