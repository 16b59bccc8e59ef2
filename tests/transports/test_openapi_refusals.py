"""Each refusal of the table is documented under exactly the operations that give it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from streaming.api.errors import Refusal
from streaming.runs import shutdown
from streaming.transports.openapi import openapi_document
from tests.support.asgi import request
from tests.support.rows import make_session

pytestmark = pytest.mark.django_db(transaction=True)

DOC = openapi_document()
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

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.refusal.name}"


STREAMS = [
    ("/api/chat/stream", {"thread_id": "refusals"}),
    ("/api/prose/generate", {"prompt": "x", "option": "fix"}),
]
SESSIONS = [
    ("GET", "/api/sessions/{session_id}"),
    ("POST", "/api/sessions/{session_id}/cancel"),
    ("GET", "/api/sessions/{session_id}/stream"),
]
CASES = [
    *(
        case
        for path, body in STREAMS
        for case in [
            Case("POST", path, Refusal.BAD_TOKEN, body, {"STREAM_API_TOKEN": "s3cret"}),
            Case("POST", path, Refusal.CLIENT_AT_LIMIT, body, {"STREAM_MAX_STREAMS_PER_CLIENT": 0}),
            Case("POST", path, Refusal.AT_LIMIT, body, {"STREAM_MAX_STREAMS": 0}),
            Case("POST", path, Refusal.SHUTTING_DOWN, body, failure="shutdown"),
            Case("POST", path, Refusal.CANNOT_OPEN, body, failure="database"),
        ]
    ),
    Case("POST", "/api/chat/stream", Refusal.MCP_DISABLED, {"mcp_settings": {"servers": {}}}),
    *(
        case
        for method, path in SESSIONS
        for case in [
            Case(method, path, Refusal.BAD_TOKEN, settings={"STREAM_API_TOKEN": "s3cret"}),
            Case(method, path, Refusal.NO_SESSION),
            Case(method, path, Refusal.NOT_FOUND, session="not-a-uuid"),
        ]
    ),
    Case("POST", "/api/sessions/{session_id}/cancel", Refusal.ALREADY_ENDED, session="ended"),
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
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                examples = response["content"].get("application/json", {}).get("examples", {})
                for name, example in examples.items():
                    if (refusal := by_name.get(name)) is not None:
                        assert example["value"] == {"detail": refusal.detail}
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
    if case.failure == "shutdown":
        monkeypatch.setattr(shutdown, "in_progress", lambda: True)
    elif case.failure == "database":

        async def broken(**_: object) -> None:
            raise OSError("database went away")

        monkeypatch.setattr("streaming.records.open_session", broken)
    session = case.session
    if session == "ended":
        session = str((await sync_to_async(make_session)()).id)
    raw = b"" if case.body is None else json.dumps(case.body).encode()
    headers = {"content-type": "application/json", **case.headers} if raw else case.headers
    with override_settings(**case.settings):
        exchange = await request(
            case.method, case.path.replace("{session_id}", session), body=raw, headers=headers
        )
        body = json.loads(await exchange.read_all())

    assert (exchange.status, body) == (case.refusal.status, {"detail": case.refusal.detail})
    documented = DOC["paths"][case.path][case.method.lower()]["responses"][str(exchange.status)]
    examples = documented["content"]["application/json"]["examples"].values()
    assert {"value": body} in examples
    for header in documented.get("headers", {}):
        assert header.lower() in exchange.headers
