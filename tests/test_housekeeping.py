"""Housekeeping: stale running rows end as worker_lost; old ended rows are pruned."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from streaming.housekeeping import prune_sessions, run_every, sweep_stale_sessions
from streaming.models import StreamSession, WebhookDelivery
from tests.support.live import ROOT, migrate, server_env
from tests.support.rows import make_session

pytestmark = pytest.mark.django_db


def row(session: StreamSession) -> tuple[str, str, bool]:
    """Return what the admin shows of a session: status, end reason, whether it ended."""
    session.refresh_from_db()
    return session.status, session.end_reason, session.ended_at is not None


def test_sweep_ends_only_running_rows_with_stale_heartbeats() -> None:
    now = timezone.now()
    stale = make_session(reason=None, heartbeat_at=now - timedelta(seconds=90))
    alive = make_session(reason=None, heartbeat_at=now - timedelta(seconds=10))
    cancelled = make_session(reason=None, heartbeat_at=now - timedelta(seconds=90))
    StreamSession.objects.filter(pk=cancelled.pk).update(
        status="cancelled", end_reason="user_cancel", ended_at=now
    )

    assert sweep_stale_sessions(stale_after=60) == 1

    assert row(stale) == ("interrupted", "worker_lost", True)
    assert stale.ended_at is not None
    assert stale.ended_at >= now
    assert row(alive) == ("running", "", False)
    assert row(cancelled) == ("cancelled", "user_cancel", True)


def test_sweep_ends_stale_queued_rows_and_prune_keeps_live_ones() -> None:
    now = timezone.now()
    stale = make_session(reason=None, status="queued", heartbeat_at=now - timedelta(seconds=90))
    waiting = make_session(reason=None, status="queued", heartbeat_at=now - timedelta(seconds=10))
    old_waiting = make_session(ago=timedelta(days=31), reason=None, status="queued")
    StreamSession.objects.filter(pk=old_waiting.pk).update(heartbeat_at=now)

    assert sweep_stale_sessions(stale_after=60) == 1
    assert prune_sessions(days=30) == 0

    assert row(stale) == ("interrupted", "worker_lost", True)
    assert row(waiting) == ("queued", "", False)
    assert row(old_waiting) == ("queued", "", False)


@override_settings(STREAM_ROW_HEARTBEAT_SECONDS=10, STREAM_HEARTBEAT_SECONDS=1)
def test_sweep_default_threshold_is_two_row_heartbeats() -> None:
    now = timezone.now()
    missed_one = make_session(reason=None, heartbeat_at=now - timedelta(seconds=15))
    missed_two = make_session(reason=None, heartbeat_at=now - timedelta(seconds=25))

    assert sweep_stale_sessions() == 1

    assert row(missed_one)[0] == "running"
    assert row(missed_two)[:2] == ("interrupted", "worker_lost")


@override_settings(STREAM_ROW_HEARTBEAT_SECONDS=10, STREAM_STALE_AFTER_SECONDS=40)
def test_sweep_threshold_is_its_own_setting_when_set() -> None:
    now = timezone.now()
    missed_three = make_session(reason=None, heartbeat_at=now - timedelta(seconds=35))
    missed_five = make_session(reason=None, heartbeat_at=now - timedelta(seconds=50))

    assert sweep_stale_sessions() == 1

    assert row(missed_three)[0] == "running"
    assert row(missed_five)[:2] == ("interrupted", "worker_lost")


def test_sweep_is_one_update(django_assert_num_queries) -> None:
    for _ in range(3):
        make_session(reason=None, heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_assert_num_queries(1):
        assert sweep_stale_sessions(stale_after=60) == 3


def test_sweep_command_reports_what_it_did() -> None:
    make_session(reason=None, heartbeat_at=timezone.now() - timedelta(seconds=120))
    out = StringIO()
    call_command("sweep_sessions", "--stale-after", "100", stdout=out)
    assert out.getvalue().strip() == (
        "Marked 1 stale session(s) interrupted (worker lost); stale after 100 s."
    )
    assert StreamSession.objects.get().end_reason == "worker_lost"


@pytest.mark.parametrize("args", [["--stale-after", "0"], ["--every", "-1"]])
def test_sweep_command_refuses_nonsense(args: list[str]) -> None:
    with pytest.raises(CommandError, match="positive"):
        call_command("sweep_sessions", *args)


def test_run_every_repeats_until_stopped_and_survives_a_failed_run() -> None:
    stop = threading.Event()
    runs: list[int] = []

    def task() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("database went away")
        if len(runs) == 3:
            stop.set()

    run_every(0, task, stop=stop)
    assert runs == [0, 1, 2]


def test_prune_deletes_old_ended_rows_only() -> None:
    old_done = make_session(ago=timedelta(days=31))
    old_cancelled = make_session(ago=timedelta(days=40), reason=None, status="cancelled")
    old_running = make_session(ago=timedelta(days=31), reason=None)
    recent = make_session(ago=timedelta(days=29))

    assert prune_sessions(days=30) == 2

    left = set(StreamSession.objects.values_list("pk", flat=True))
    assert left == {old_running.pk, recent.pk}
    assert not {old_done.pk, old_cancelled.pk} & left


def test_prune_deletes_in_batches() -> None:
    for _ in range(5):
        make_session(ago=timedelta(days=60))
    with CaptureQueriesContext(connection) as queries:
        assert prune_sessions(days=30, batch_size=2) == 5
    deletes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('DELETE FROM "streaming_streamsession"')
    ]
    assert len(deletes) == 3
    assert not StreamSession.objects.exists()


def test_prune_takes_the_webhook_attempts_of_the_sessions_it_deletes() -> None:
    old, recent = make_session(ago=timedelta(days=31)), make_session(ago=timedelta(days=1))
    for session in (old, old, recent):
        WebhookDelivery.objects.create(
            session=session, attempt=1, url="https://h.example/", at=timezone.now(), duration_ms=1
        )

    assert prune_sessions(days=30) == 1  # sessions, not their attempts

    assert list(WebhookDelivery.objects.values_list("session", flat=True)) == [recent.pk]


def test_prune_command_reports_what_it_did() -> None:
    make_session(ago=timedelta(days=8))
    make_session(ago=timedelta(days=3))
    out = StringIO()
    call_command("prune_sessions", "--days", "7", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 session(s) older than 7 day(s)."
    assert StreamSession.objects.count() == 1


def test_prune_command_refuses_negative_days() -> None:
    with pytest.raises(CommandError, match="--days"):
        call_command("prune_sessions", "--days", "-1")


def test_sweep_worker_loops_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = server_env(tmp_path, PYTHONUNBUFFERED="1")
    migrate(env)
    stale = timezone.now() - timedelta(hours=1)
    create = (
        "from streaming.models import StreamSession as S; "
        f"S.objects.create(kind='chat', transport='sse', started_at='{stale.isoformat()}', "
        f"heartbeat_at='{stale.isoformat()}')"
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "shell", "-c", create], cwd=ROOT, env=env, check=True)
    worker = subprocess.Popen(
        [*manage, "sweep_sessions", "--every", "0.05", "--stale-after", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()
        second = worker.stdout.readline()
        worker.send_signal(signal.SIGTERM)
        rest = worker.communicate(timeout=10)[0]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert first.startswith("Marked 1 stale session(s)")
    assert second.startswith("Marked 0 stale session(s)")
    assert rest.rstrip().endswith("Stopped.")
    assert worker.returncode == 0
