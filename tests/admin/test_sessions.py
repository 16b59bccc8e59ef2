"""The admin: what an operator sees of sessions and cancellations, and what the action does."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from streaming.models import EndReason, Kind, StreamSession, Transport, WebhookDelivery
from tests.support.asgi import post_json
from tests.support.htmlpage import Page, text
from tests.support.rows import make_session
from tests.support.sseparse import parse

pytestmark = pytest.mark.django_db

SESSIONS = "/admin/streaming/streamsession/"
CANCELLED = "/admin/streaming/cancelledsession/"


@pytest.fixture(autouse=True)
def _static_files_from_apps(settings) -> None:
    """Serve static files from the apps, as in development (no collectstatic in tests)."""
    settings.SERVESTATIC_AUTOREFRESH = True
    settings.SERVESTATIC_USE_FINDERS = True


def listed(client: Client, url: str = SESSIONS, **params: str) -> list[list[str]]:
    """Return the rows of the admin list, as text."""
    response = client.get(url, params)
    assert response.status_code == 200
    return Page(response.content).table("result_list")


def threads(client: Client, url: str = SESSIONS, **params: str) -> set[str]:
    """Return the thread column of the admin list."""
    column = 6 if url == SESSIONS else 5  # The sessions list has a checkbox column.
    return {row[column] for row in listed(client, url, **params)}


def stamp(session: StreamSession) -> str:
    """Return the start time as the list shows it."""
    return f"{timezone.localtime(session.started_at):%Y-%m-%d %H:%M:%S}"


def test_list_shows_each_session_with_its_columns(admin_client: Client) -> None:
    session = make_session(
        reason=EndReason.USER_CANCEL,
        kind=Kind.PROSE,
        transport=Transport.WEBSOCKET,
        thread_id="t" * 40,
        events_sent=42,
        duration=timedelta(seconds=75),
    )
    running = make_session(reason=None, ago=timedelta(seconds=1), thread_id="live")
    page = Page(admin_client.get(SESSIONS).content)

    header = ["Session", "Kind", "Transport", "Status", "End reason", "Thread", "Owner"]
    header += ["Started", "Duration", "Events sent"]
    assert page.table("result_list", "thead") == [["", *header]]
    assert page.table("result_list") == [
        [
            "",
            running.id.hex[:8],
            "chat",
            "SSE",
            "running",
            "none",
            "live",
            "-",
            stamp(running),
            "-",
            "7",
        ],
        [
            *["", session.id.hex[:8], "prose", "WebSocket", "cancelled", "cancelled by a user"],
            *["t" * 18 + "…", "-", stamp(session), "1 min 15 s", "42"],
        ],
    ]


def test_list_takes_as_many_queries_for_many_rows_as_for_few(
    admin_client: Client, django_assert_max_num_queries
) -> None:
    for n in range(2):
        make_session(thread_id=f"few-{n}")
    admin_client.get(SESSIONS)  # Warm up what is cached per process (content types...).
    with django_assert_max_num_queries(100) as few:
        assert len(listed(admin_client)) == 2
    for n in range(48):
        make_session(reason=EndReason.TIMEOUT, thread_id=f"many-{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(listed(admin_client)) == 50
    assert len(few.captured_queries) <= 7  # one of them: the users the owner filter offers


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "cancelled"}, {"stopped"}),
        ({"end_reason__exact": "timeout"}, {"slow"}),
        ({"kind__exact": "prose"}, {"stopped"}),
        ({"transport__exact": "websocket"}, {"stopped", "slow"}),
        ({}, {"done", "stopped", "slow", "old"}),
    ],
)
def test_list_filters(admin_client: Client, params: dict[str, str], expected: set[str]) -> None:
    make_session(thread_id="done")
    make_session(
        thread_id="stopped",
        reason=EndReason.USER_CANCEL,
        kind=Kind.PROSE,
        transport=Transport.WEBSOCKET,
    )
    make_session(thread_id="slow", reason=EndReason.TIMEOUT, transport=Transport.WEBSOCKET)
    make_session(thread_id="old", ago=timedelta(days=400))
    assert threads(admin_client, **params) == expected


def test_list_offers_the_filters_and_a_date_drill_down(admin_client: Client) -> None:
    old = make_session(thread_id="old", ago=timedelta(days=400))
    make_session(thread_id="new")
    page = Page(admin_client.get(SESSIONS).content)

    assert [text(summary) for summary in page.all(tag="summary")] == [
        "By status",
        "By end reason",
        "By kind",
        "By transport",
        "By owner",
    ]
    years = [text(link) for link in page.one(cls="toplinks").children if link]
    assert str(old.started_at.year) in years
    assert threads(admin_client, started_at__year=str(old.started_at.year)) == {"old"}


@pytest.mark.parametrize("how", ["full id", "short id", "thread id", "client address", "junk"])
def test_search(admin_client: Client, how: str) -> None:
    wanted = make_session(thread_id="wanted-thread", client_address="203.0.113.9")
    make_session(thread_id="other-thread", client_address="198.51.100.1")
    term = {
        "full id": str(wanted.id),
        "short id": wanted.id.hex[:8],
        "thread id": "wanted-thread",
        "client address": "203.0.113.9",
        "junk": "nothing-like-this",
    }[how]
    expected = set() if how == "junk" else {"wanted-thread"}
    assert threads(admin_client, q=term) == expected


def test_detail_is_read_only_and_shows_request_and_error(admin_client: Client) -> None:
    params = {"messages": [{"role": "user", "content": "<script>alert(1)</script>"}], "x": 3}
    session = make_session(
        reason=EndReason.ERROR,
        request_params=params,
        error="ValueError: the model said no\n  at step 2",
    )
    response = admin_client.get(f"{SESSIONS}{session.pk}/change/")
    content = response.content.decode()

    blocks = re.findall(r'<pre class="session-text">(.*?)</pre>', content, re.DOTALL)
    assert [html.unescape(block) for block in blocks] == [
        json.dumps(params, indent=2, sort_keys=True),
        "ValueError: the model said no\n  at step 2",
    ]
    assert "<script>alert(1)</script>" not in content
    assert 'name="_save"' not in content
    page = Page(response.content)
    shown = {name: text(page.one(cls=f"field-{name}")) for name in ("status", "end_reason")}
    assert shown == {"status": "Status: failed", "end_reason": "End reason: the source failed"}
    assert admin_client.get(f"{SESSIONS}add/").status_code == 403
    assert admin_client.post(f"{SESSIONS}{session.pk}/change/", {}).status_code == 403
    assert admin_client.post(f"{SESSIONS}{session.pk}/delete/", {}).status_code == 403
    assert "Add stream session" not in admin_client.get(SESSIONS).content.decode()


def test_cancelled_view_lists_only_sessions_that_were_stopped(admin_client: Client) -> None:
    sessions = {
        reason: make_session(reason=reason, thread_id=reason.value or "completed")
        for reason in EndReason
    }
    running = make_session(reason=None, thread_id="running")

    assert threads(admin_client, CANCELLED) == {
        "user_cancel",
        "superseded",
        "client_disconnect",
        "slow_client",
        "timeout",
        "server_shutdown",
        "worker_lost",
    }
    assert threads(admin_client, CANCELLED, end_reason="timeout") == {"timeout"}
    timed_out = admin_client.get(f"{CANCELLED}{sessions[EndReason.TIMEOUT].pk}/change/")
    assert (
        text(Page(timed_out.content).one(cls="field-end_reason")) == "End reason: deadline passed"
    )
    assert admin_client.get(f"{CANCELLED}{running.pk}/change/")["Location"] == "/admin/"
    index = Page(admin_client.get("/admin/").content)
    assert text(index.one(id="streaming-cancelledsession")) == "Cancelled sessions"
    assert text(index.one(id="streaming-streamsession")) == "Stream sessions"


def test_cancelled_view_summarises_the_last_day_and_week(admin_client: Client) -> None:
    hour, half_hour = timedelta(hours=1), timedelta(minutes=30)
    make_session(reason=EndReason.USER_CANCEL, ago=hour)
    make_session(reason=EndReason.USER_CANCEL, ago=hour)
    make_session(reason=EndReason.USER_CANCEL, ago=timedelta(days=3))
    make_session(reason=EndReason.TIMEOUT, ago=timedelta(days=2))
    make_session(reason=EndReason.CLIENT_DISCONNECT, ago=half_hour)
    make_session(reason=EndReason.CLIENT_DISCONNECT, ago=timedelta(hours=30))
    make_session(reason=EndReason.WORKER_LOST, ago=timedelta(days=10))
    make_session(reason=EndReason.SUPERSEDED, ago=timedelta(days=4))
    make_session(reason=EndReason.NONE, ago=hour)
    make_session(reason=EndReason.ERROR, ago=hour)
    make_session(reason=None, ago=hour)
    page = Page(admin_client.get(CANCELLED).content)

    assert page.table("cancel-counts") == [
        ["cancelled by a user", "2", "3"],
        ["superseded by a newer run", "0", "1"],
        ["client disconnected", "1", "2"],
        ["client stopped reading", "0", "0"],
        ["deadline passed", "0", "1"],
        ["server shut down", "0", "0"],
        ["worker lost", "0", "0"],
    ]
    assert page.table("cancel-counts", "tfoot") == [["All", "3", "7"]]
    assert len(page.table("result_list")) == 8

    def day(ago: timedelta) -> str:
        return f"{timezone.now() - ago:%b %d}"

    bars = sorted(text(title) for title in page.all(tag="title", inside="cancel-chart"))
    assert bars == sorted(
        [
            f"{day(hour)}: 2 cancelled by a user",
            f"{day(half_hour)}: 1 client disconnected",
            f"{day(timedelta(hours=30))}: 1 client disconnected",
            f"{day(timedelta(days=2))}: 1 deadline passed",
            f"{day(timedelta(days=3))}: 1 cancelled by a user",
            f"{day(timedelta(days=4))}: 1 superseded by a newer run",
            f"{day(timedelta(days=10))}: 1 worker lost",
        ]
    )


def test_cancelled_view_says_when_there_is_nothing(admin_client: Client) -> None:
    page = Page(admin_client.get(CANCELLED).content)
    assert page.table("cancel-counts", "tfoot") == [["All", "0", "0"]]
    assert "None in the last 14 days" in admin_client.get(CANCELLED).content.decode()


@pytest.mark.django_db(transaction=True)
def test_cancel_action_reports_how_many_it_reached(admin_client: Client) -> None:
    running = make_session(reason=None)
    ended = make_session(reason=EndReason.USER_CANCEL)
    completed = make_session()
    response = admin_client.post(
        SESSIONS,
        {"action": "cancel_sessions", "_selected_action": [running.pk, ended.pk, completed.pk]},
        follow=True,
    )
    assert Page(response.content).messages() == [
        "Sent a cancel to 1 running session. 2 selected sessions were not running."
    ]

    response = admin_client.post(
        SESSIONS, {"action": "cancel_sessions", "_selected_action": [ended.pk]}, follow=True
    )
    assert Page(response.content).messages() == [
        "Sent a cancel to 0 running sessions. 1 selected session was not running."
    ]


def test_cancel_action_needs_the_change_permission(client: Client, admin_client: Client) -> None:
    make_session(reason=None)
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_streamsession"))
    client.force_login(viewer)

    def actions(as_client: Client) -> list[str]:
        page = Page(as_client.get(SESSIONS).content)
        return [str(option.children[0]) for option in page.all(tag="option") if option.children]

    assert "Cancel selected running sessions" in actions(admin_client)
    assert "Cancel selected running sessions" not in actions(client)


@pytest.fixture
async def _close_view_thread_connections() -> AsyncIterator[None]:
    """Close the connection the admin's (sync) views opened in asgiref's thread.

    The test client keeps request connections open; PostgreSQL then refuses to drop the
    test database.
    """
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_view_thread_connections")
@override_settings(STREAM_DEMO_DELAY_MS=20)
async def test_cancel_action_stops_a_live_stream() -> None:
    admin = await User.objects.acreate_superuser("root", "root@example.com", "pw")
    question = {"messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    stream = await post_json("/api/chat/stream", question | {"auto_accepted_plan": True})
    session_id = stream.headers["x-stream-session-id"]
    await stream.read_until(b"\nid: 2\n")

    browser = AsyncClient()
    await browser.aforce_login(admin)
    response = await browser.post(
        SESSIONS, {"action": "cancel_sessions", "_selected_action": [session_id]}, follow=True
    )
    body = await stream.read_all()

    assert Page(response.content).messages() == ["Sent a cancel to 1 running session."]
    last = parse(body)[-1]
    assert (last.event, last.json()["reason"]) == ("error", "cancelled")
    session = await StreamSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("cancelled", "user_cancel")


def test_the_list_shows_each_sessions_owner_and_filters_by_user(admin_client: Client) -> None:
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    make_session(thread_id="alices", owner=alice)
    make_session(thread_id="bobs", owner=bob)
    make_session(thread_id="nobodys")

    rows = {row[6]: row[7] for row in listed(admin_client)}
    assert rows == {"alices": "alice", "bobs": "bob", "nobodys": "-"}
    assert threads(admin_client, owner__id__exact=str(bob.pk)) == {"bobs"}
    detail = admin_client.get(
        f"{SESSIONS}{StreamSession.objects.get(thread_id='alices').pk}/change/"
    )
    assert "alice" in detail.content.decode()


def test_session_page_shows_its_webhook_attempts_read_only(admin_client: Client) -> None:
    session = make_session(reason=EndReason.USER_CANCEL, thread_id="hooked")
    start = timezone.now()
    for attempt, status, error in ((1, 500, "HTTP 500"), (2, None, "ConnectError: refused")):
        WebhookDelivery.objects.create(
            session=session,
            attempt=attempt,
            url="https://hooks.example/stream-ended",
            at=start + timedelta(seconds=attempt),
            status_code=status,
            error=error,
            duration_ms=12,
        )

    for url in (SESSIONS, CANCELLED):
        response = admin_client.get(f"{url}{session.pk}/change/")
        assert response.status_code == 200
        rows = webhook_rows(Page(response.content))
        assert [row[1:] for row in rows] == [
            [
                "1",
                f"{timezone.localtime(start + timedelta(seconds=1)):%Y-%m-%d %H:%M:%S}",
                "https://hooks.example/stream-ended",
                "500",
                "HTTP 500",
                "12",
                "",  # the delete column, empty: nothing can be deleted
            ],
            [
                "2",
                f"{timezone.localtime(start + timedelta(seconds=2)):%Y-%m-%d %H:%M:%S}",
                "https://hooks.example/stream-ended",
                "-",
                "ConnectError: refused",
                "12",
                "",
            ],
        ]
        content = response.content.decode()
        assert 'name="webhook_deliveries-0-url"' not in content  # nothing editable


def webhook_rows(page: Page) -> list[list[str]]:
    """Return the webhook attempts a session's page shows, each row's cells as text."""
    rows = page.all(tag="tr", cls="has_original", inside="webhook_deliveries-group")
    return [
        [text(cell) for cell in row.children if getattr(cell, "name", "") == "td"] for row in rows
    ]
