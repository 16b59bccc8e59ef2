"""Each refusal of the table is documented under exactly the operations that give it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from streaming.api.errors import Refusal
from streaming.api.observers import make_link
from streaming.conf import AUTH_CHOICES
from streaming.runs import shutdown
from streaming.runs.threads import ThreadHold, thread_key
from streaming.transports.openapi import openapi_document
from streaming.transports.openapi_refusals import EXAMPLE_SESSION
from tests.support.asgi import request
from tests.support.rows import make_session
from tests.support.users import signed_in_cookie

pytestmark = pytest.mark.django_db(transaction=True)

DOC = openapi_document
UNKNOWN = "00000000-0000-0000-0000-000000000005"


@dataclass(frozen=True)
class Case:
    """How to make one operation give one refusal."""

    method: str
    path: str  # as documented
    refusal: Refusal
    body: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    session: str = UNKNOWN  # "ended": a session that ended and whose events are not kept
    headers: dict[str, str] = field(default_factory=dict)
    failure: str = ""  # "shutdown": the server shuts down; "database": recording fails
    link: str = ""  # an observer link in the query: "valid", "expired" or "forged"
    query: str = ""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.refusal.name}"


STREAMS = [
    ("/api/chat/stream", {"thread_id": "refusals"}),
    ("/api/prose/generate", {"prompt": "x", "option": "fix"}),
]
TEXT_PLAIN = {"content-type": "text/plain"}
USERS = {"STREAM_AUTH": "users"}
SESSIONS = [
    ("GET", "/api/sessions/{session_id}"),
    ("POST", "/api/sessions/{session_id}/cancel"),
    ("GET", "/api/sessions/{session_id}/stream"),
    ("POST", "/api/sessions/{session_id}/observer-link"),
]
OBSERVE = "/api/sessions/{session_id}/observe"
THREAD = "/api/threads/{thread_id}/sessions"
CASES = [
    *(
        case
        for path, body in STREAMS
        for case in [
            Case("POST", path, Refusal.BAD_TOKEN, body, {"STREAM_API_TOKEN": "s3cret"}),
            Case("POST", path, Refusal.CLIENT_AT_LIMIT, body, {"STREAM_MAX_STREAMS_PER_CLIENT": 0}),
            Case("POST", path, Refusal.AT_LIMIT, body, {"STREAM_MAX_STREAMS": 0}),
            Case("POST", path, Refusal.UNSUPPORTED_MEDIA_TYPE, body, headers=TEXT_PLAIN),
            Case("POST", path, Refusal.SIGN_IN, body, USERS),
            Case("POST", path, Refusal.CSRF_FAILED, body, USERS, failure="cookie"),
            Case("POST", path, Refusal.SHUTTING_DOWN, body, failure="shutdown"),
            Case("POST", path, Refusal.CANNOT_OPEN, body, failure="database"),
            Case("POST", path, Refusal.WEBHOOK_NOT_ALLOWED, {**body, "webhook": "https://x.test/"}),
        ]
    ),
    Case("POST", "/api/chat/stream", Refusal.MCP_DISABLED, {"mcp_settings": {"servers": {}}}),
    Case(
        "POST",
        "/api/chat/stream",
        Refusal.THREAD_BUSY,
        {"thread_id": "busy", "multitask_strategy": "reject"},
        failure="thread held",
    ),
    # The thread is held by a run that never stops (no such session: nothing to cancel).
    Case(
        "POST",
        "/api/chat/stream",
        Refusal.THREAD_NOT_FREED,
        {"thread_id": "busy", "multitask_strategy": "interrupt"},
        {"STREAM_CANCEL_GRACE_SECONDS": 0},
        failure="thread held",
    ),
    *(
        case
        for method, path in SESSIONS
        for case in [
            Case(method, path, Refusal.BAD_TOKEN, settings={"STREAM_API_TOKEN": "s3cret"}),
            Case(method, path, Refusal.SIGN_IN, settings=USERS),
            Case(method, path, Refusal.NO_SESSION),
            Case(method, path, Refusal.NOT_FOUND, session="not-a-uuid"),
        ]
    ),
    Case("POST", "/api/sessions/{session_id}/cancel", Refusal.ALREADY_ENDED, session="ended"),
    Case("POST", "/api/sessions/{session_id}/cancel", Refusal.BAD_WAIT, query="wait=61"),
    Case("GET", THREAD, Refusal.BAD_TOKEN, settings={"STREAM_API_TOKEN": "s3cret"}),
    Case("GET", THREAD, Refusal.SIGN_IN, settings=USERS),
    Case("GET", THREAD, Refusal.BAD_LIMIT, query="limit=0"),
    *(
        Case("POST", path, Refusal.CSRF_FAILED, settings=USERS, failure="cookie")
        for path in (
            "/api/sessions/{session_id}/cancel",
            "/api/sessions/{session_id}/observer-link",
        )
    ),
    Case("GET", OBSERVE, Refusal.LINK_INVALID, link="forged"),
    Case("GET", OBSERVE, Refusal.LINK_EXPIRED, link="expired"),
    Case("GET", OBSERVE, Refusal.NOT_FOUND, session="not-a-uuid", link="forged"),
    Case("GET", OBSERVE, Refusal.NOT_KEPT, session="ended", link="valid"),
    Case("GET", OBSERVE, Refusal.BAD_EVENT_ID, link="valid", headers={"last-event-id": "x"}),
    Case("GET", "/metrics", Refusal.BAD_TOKEN, settings={"STREAM_METRICS_TOKEN": "s3cret"}),
    Case("GET", "/api/sessions/{session_id}/stream", Refusal.NOT_KEPT, session="ended"),
    Case(
        "GET",
        "/api/sessions/{session_id}/stream",
        Refusal.BAD_EVENT_ID,
        headers={"last-event-id": "x"},
    ),
]


def documented_refusals() -> set[tuple[str, str, Refusal]]:
    """Return every (method, path, refusal) of the table the document gives an example of."""
    by_name = {refusal.name.lower(): refusal for refusal in Refusal}
    found = set()
    for path, item in [(p, i) for mode in AUTH_CHOICES for p, i in DOC(mode)["paths"].items()]:
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                examples = response["content"].get("application/json", {}).get("examples", {})
                for name, example in examples.items():
                    if (refusal := by_name.get(name)) is not None:
                        assert example["value"]["detail"] == refusal.detail
                        assert status == str(refusal.status)
                        found.add((method.upper(), path, refusal))
    return found


def test_the_document_gives_each_refusal_under_the_operations_that_give_it() -> None:
    assert documented_refusals() == {(case.method, case.path, case.refusal) for case in CASES}


def test_every_refusal_but_405_is_given_by_some_operation() -> None:
    # 405 answers a method an endpoint does not serve: no operation of the document.
    assert {case.refusal for case in CASES} == set(Refusal) - {Refusal.METHOD_NOT_ALLOWED}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_each_case_gives_its_refusal(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    held: ThreadHold | None = None
    if case.failure == "shutdown":
        monkeypatch.setattr(shutdown, "in_progress", lambda: True)
    elif case.failure == "database":

        async def broken(**_: object) -> None:
            raise OSError("database went away")

        monkeypatch.setattr("streaming.records.open_session", broken)
    elif case.failure == "thread held":
        held = ThreadHold(thread_key(None, "busy"), uuid.UUID(EXAMPLE_SESSION))
        assert await held.take() is None
    session = case.session
    if session == "ended":
        session = str((await sync_to_async(make_session)()).id)
    raw = b"" if case.body is None else json.dumps(case.body).encode()
    headers = {"content-type": "application/json", **case.headers} if raw else case.headers
    if case.failure == "cookie":  # signed in, but without the CSRF header
        headers = {**headers, "cookie": await sync_to_async(signed_in_cookie)()}
    query = case.query
    if case.link == "forged":
        query = "link=eyJlIjo5OTk5OTk5OTk5fQ:forged"
    elif case.link:
        seconds = 0 if case.link == "expired" else 60
        with override_settings(STREAM_OBSERVER_LINK_SECONDS=seconds):
            query = f"link={make_link(uuid.UUID(session))[0]}"
    with override_settings(**case.settings):
        exchange = await request(
            case.method,
            case.path.replace("{session_id}", session).replace("{thread_id}", "refusals"),
            body=raw,
            headers=headers,
            query=query,
        )
        body = json.loads(await exchange.read_all())
    if held is not None:  # With Redis the hold would outlive the test (its TTL).
        await held.release()

    extra = {"session_id": EXAMPLE_SESSION} if case.refusal is Refusal.THREAD_BUSY else {}
    expected = {"detail": case.refusal.detail, **extra}
    assert (exchange.status, body) == (case.refusal.status, expected)
    with override_settings(**case.settings):
        operation = DOC()["paths"][case.path][case.method.lower()]  # the mode's document
    documented = operation["responses"][str(exchange.status)]
    examples = documented["content"]["application/json"]["examples"].values()
    assert {"value": body} in examples
    for header in documented.get("headers", {}):
        assert header.lower() in exchange.headers
