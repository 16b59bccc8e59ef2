"""The sessions' JSON endpoints in one process (no Redis): live records, a thread's sessions,
cancel with `wait`, and who sees what."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from streaming.models import EndReason
from tests.support.asgi import post_json, request
from tests.support.rows import make_session
from tests.support.sources import Probe
from tests.support.users import make_token, make_user

pytestmark = pytest.mark.django_db(transaction=True)


async def get_json(path: str, *, query: str = "", token: str = "") -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    exchange = await request("GET", path, query=query, headers=headers)
    return exchange.status, json.loads(await exchange.read_all())


async def test_a_running_sessions_record_counts_live(probe: Probe, use_source, settings) -> None:
    # The run's own counts. With Redis every worker reads the progress the run writes there,
    # whose delivered count trails by up to a second (tests/e2e/test_live_records.py).
    settings.REDIS_URL = ""
    probe.events, probe.hold_at = 6, 3  # three events, then wait for the gate
    use_source("CountingSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "live"})
    await exchange.read_until(b"id: 3\n")
    session_id = exchange.headers["x-stream-session-id"]

    _, running = await get_json(f"/api/sessions/{session_id}")
    probe.gate.set()
    await exchange.read_all()
    _, ended = await get_json(f"/api/sessions/{session_id}")

    assert (running["status"], running["last_event_id"], running["events_sent"]) == (
        "running",
        3,
        3,
    )
    assert (ended["status"], ended["last_event_id"], ended["events_sent"]) == ("completed", 6, 6)


async def test_cancel_with_wait_answers_with_the_final_record(probe: Probe, use_source) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "wait"})
    await exchange.read_until(b"id: 1\n")
    session_id = exchange.headers["x-stream-session-id"]

    cancel = await request("POST", f"/api/sessions/{session_id}/cancel", query="wait=5")
    final = json.loads(await cancel.read_all())
    await exchange.read_all()

    assert cancel.status == 200
    assert (final["id"], final["status"], final["end_reason"]) == (
        session_id,
        "cancelled",
        "user_cancel",
    )
    assert final["ended_at"] is not None
    assert final["last_event_id"] == final["events_sent"] == 2  # one chunk, the cancel's frame


@pytest.mark.parametrize("wait", ["61", "-1", "nan", "inf", "1e3", "", "soon"])
async def test_a_bad_wait_is_refused_and_cancels_nothing(
    probe: Probe, use_source, wait: str
) -> None:
    use_source("IdleSource")
    exchange = await post_json("/api/chat/stream", {"thread_id": "bad-wait"})
    await exchange.read_until(b"id: 1\n")
    session_id = exchange.headers["x-stream-session-id"]

    cancel = await request("POST", f"/api/sessions/{session_id}/cancel", query=f"wait={wait}")
    answer = json.loads(await cancel.read_all())
    _, record = await get_json(f"/api/sessions/{session_id}")
    await exchange.disconnect()

    assert (cancel.status, answer) == (
        422,
        {"detail": "wait must be a number of seconds from 0 to 60."},
    )
    assert record["status"] == "running"


async def test_a_threads_sessions_newest_first_within_the_limit() -> None:
    @sync_to_async
    def rows() -> list[str]:
        made = [
            make_session(thread_id="t-list", ago=timedelta(minutes=minutes), reason=reason)
            for minutes, reason in [(3, EndReason.NONE), (1, None), (2, EndReason.USER_CANCEL)]
        ]
        make_session(thread_id="t-other", ago=timedelta(seconds=5))
        return [str(session.id) for session in made]

    oldest, newest, middle = await rows()

    status, listed = await get_json("/api/threads/t-list/sessions")
    _, limited = await get_json("/api/threads/t-list/sessions", query="limit=2")
    _, empty = await get_json("/api/threads/nobody/sessions")

    assert status == 200
    assert listed["thread_id"] == "t-list"
    assert [s["id"] for s in listed["sessions"]] == [newest, middle, oldest]
    assert [s["status"] for s in listed["sessions"]] == ["running", "cancelled", "completed"]
    assert [s["id"] for s in limited["sessions"]] == [newest, middle]
    assert empty == {"thread_id": "nobody", "sessions": []}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "", "all"])
async def test_a_bad_limit_is_refused(limit: str) -> None:
    status, answer = await get_json("/api/threads/t/sessions", query=f"limit={limit}")
    assert (status, answer) == (422, {"detail": "limit must be an integer from 1 to 100."})


@override_settings(STREAM_AUTH="users")
async def test_a_user_lists_only_their_own_sessions_of_a_thread() -> None:
    @sync_to_async
    def accounts() -> tuple[str, str, str, str]:
        alice, bob = make_user("alice"), make_user("bob")
        staff = make_user("root", staff=True, manage_all=True)
        mine = make_session(thread_id="shared", owner=alice, ago=timedelta(minutes=2))
        theirs = make_session(thread_id="shared", owner=bob, ago=timedelta(minutes=1))
        return make_token(alice), make_token(staff), str(mine.id), str(theirs.id)

    alice, staff, mine, theirs = await accounts()

    _, seen_by_alice = await get_json("/api/threads/shared/sessions", token=alice)
    _, seen_by_staff = await get_json("/api/threads/shared/sessions", token=staff)
    anonymous, _ = await get_json("/api/threads/shared/sessions")

    assert [s["id"] for s in seen_by_alice["sessions"]] == [mine]
    assert [s["id"] for s in seen_by_staff["sessions"]] == [theirs, mine]
    assert anonymous == 401
