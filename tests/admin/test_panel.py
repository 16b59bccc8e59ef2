"""The live panel: live streams per worker, the last hour's endings and timings, its chart."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from streaming.models import EndReason, Kind, StreamSession, Transport
from streaming.observe.worker import worker_id
from tests.support.htmlpage import Page, text
from tests.support.rows import make_session

pytestmark = pytest.mark.django_db

PANEL = "/admin/streaming/sessionpanel/"


@pytest.fixture(autouse=True)
def _static_files_from_apps(settings) -> None:
    """Serve static files from the apps, as in development (no collectstatic in tests)."""
    settings.SERVESTATIC_AUTOREFRESH = True
    settings.SERVESTATIC_USE_FINDERS = True


# (end reason, duration in ms, first event in ms or None) of the runs of the last hour.
LAST_HOUR = [
    (EndReason.NONE, 1200, 35.5),
    (EndReason.NONE, 4700, 12.25),
    (EndReason.NONE, 900, 80.0),
    (EndReason.NONE, 15300, 41.0),
    (EndReason.NONE, 2100, 7.5),
    (EndReason.USER_CANCEL, 3300, 22.0),
    (EndReason.USER_CANCEL, 650, None),
    (EndReason.CLIENT_DISCONNECT, 8100, 150.0),
    (EndReason.TIMEOUT, 30000, 2500.0),
    (EndReason.ERROR, 120, None),
    (EndReason.SERVER_SHUTDOWN, 5500, 66.0),
]


def seed() -> None:
    """Make the last hour's runs, older ones, and running rows on two workers."""
    for index, (reason, duration_ms, first_ms) in enumerate(LAST_HOUR):
        make_session(
            ago=timedelta(minutes=50 - 4 * index),
            reason=reason,
            duration=timedelta(milliseconds=duration_ms),
            first_event_ms=first_ms,
        )
    for reason in (EndReason.NONE, EndReason.USER_CANCEL, EndReason.TIMEOUT):
        make_session(ago=timedelta(hours=3), reason=reason, first_event_ms=1.0)
    now = timezone.now()
    for worker, count in (("host-a:101", 3), ("host-b:202", 1)):
        for index in range(count):
            make_session(
                reason=None,
                worker=worker,
                heartbeat_at=now,
                transport=Transport.WEBSOCKET if index == 0 else Transport.SSE,
                kind=Kind.PROSE if index == 2 else Kind.CHAT,
            )
    # A running row whose worker stopped refreshing it: lost, not live.
    make_session(reason=None, worker="host-c:303", ago=timedelta(minutes=30))


def quantiles(values: list[float]) -> tuple[float, float]:
    """Return p50 and p95 by linear interpolation (as PostgreSQL's percentile_cont)."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def test_panel_shows_live_streams_per_worker_endings_and_timings(admin_client: Client) -> None:
    seed()
    response = admin_client.get(PANEL)
    assert response.status_code == 200
    page = Page(response.content)

    assert text(page.one(id="live-total")) == "4"
    workers = page.table("live-workers")
    assert [row[:6] for row in workers] == [
        ["host-a:101", "3", "2", "1", "2", "1"],
        ["host-b:202", "1", "0", "1", "1", "0"],
    ]
    assert "1 running session with a stale heartbeat" in text(page.one(id="live-stale"))

    expected = Counter(reason for reason, _, _ in LAST_HOUR)
    shown = {row[0]: (row[1], int(row[2])) for row in page.table("ended-reasons")}
    assert shown == {
        ("completed" if r is EndReason.NONE else r.label): (r.status.label, expected[r])
        for r in EndReason
    }
    assert text(page.one(id="ended-total")) == str(len(LAST_HOUR))

    durations = [ms / 1000 for _, ms, _ in LAST_HOUR]
    firsts = [ms for _, _, ms in LAST_HOUR if ms is not None]
    (d50, d95), (f50, f95) = quantiles(durations), quantiles(firsts)
    timings = {row[0]: row[1:] for row in page.table("timings")}
    assert timings == {
        "Duration": [f"{d50:.2f} s", f"{d95:.2f} s", str(len(durations))],
        "Time to first event": [f"{f50:.1f} ms", f"{f95:.1f} ms", str(len(firsts))],
    }
    cells = page.all(tag="td", inside="timings")
    values = [float(dict(cell.attributes)["data-value"] or "nan") for cell in cells[:2]]
    assert values == pytest.approx([d50, d95], abs=1e-4)


def test_the_chart_has_every_run_of_the_hour_in_its_reason_colour(admin_client: Client) -> None:
    seed()
    page = Page(admin_client.get(PANEL).content)

    segments = page.all(tag="rect", inside="ended-chart")
    counted: Counter[str] = Counter()
    for segment in segments:
        match = re.fullmatch(r"\d\d:\d\d UTC: (\d+) (.+)", text(segment))
        assert match, text(segment)
        counted[match[2]] += int(match[1])
    labels = {("completed" if r is EndReason.NONE else r.label): r for r in EndReason}
    assert {labels[label]: n for label, n in counted.items()} == Counter(
        reason for reason, _, _ in LAST_HOUR
    )
    # Runs four minutes apart: one bar each, none stacked.
    assert len(segments) == len(LAST_HOUR)


def test_an_empty_panel_says_so(admin_client: Client) -> None:
    page = Page(admin_client.get(PANEL).content)

    assert text(page.one(id="live-total")) == "0"
    assert page.table("live-workers") == [["No stream is running."]]
    assert text(page.one(id="ended-total")) == "0"
    none = "\N{EN DASH}"
    assert page.table("timings") == [
        ["Duration", none, none, "0"],
        ["Time to first event", none, none, "0"],
    ]
    assert "No run ended in the last hour" in text(page.one(id="ended-chart"))
    assert worker_id() in text(page.one(id="panel-read"))


def test_staff_without_the_panel_permission_is_refused(client: Client) -> None:
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(PANEL).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_sessionpanel"))
    client.force_login(User.objects.get(pk=user.pk))
    assert client.get(PANEL).status_code == 200


def test_the_panel_costs_the_same_number_of_queries_for_ten_or_a_thousand_rows(
    admin_client: Client, django_assert_max_num_queries
) -> None:
    seed()
    admin_client.get(PANEL)  # the session and user, loaded once
    with django_assert_max_num_queries(12) as few:
        admin_client.get(PANEL)
    StreamSession.objects.bulk_create(
        StreamSession(
            kind=Kind.CHAT,
            transport=Transport.SSE,
            started_at=timezone.now() - timedelta(minutes=30),
            ended_at=timezone.now() - timedelta(minutes=29),
            heartbeat_at=timezone.now(),
            status=EndReason.NONE.status,
            first_event_ms=float(n),
        )
        for n in range(1000)
    )
    with django_assert_max_num_queries(len(few)) as many:
        admin_client.get(PANEL)
    assert len(many) == len(few)
