"""Fuzzing: any request at the HTTP boundary, any event through the SSE encoder.

The text properties of a single event are in test_sse.py; these add nested JSON data, any
event name, whole streams of frames and comments, and deer-flow's own client parser.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from streaming.api.bodies import DEPTH_MESSAGE
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.models import StreamSession
from streaming.runs.frames import to_frame
from streaming.sources.base import Event
from streaming.transports.openapi import openapi_document
from streaming.transports.sse import encode_comment, encode_frames
from tests.support.asgi import request
from tests.support.sseparse import deerflow_events, parse

# Any code point, and often the ones that break things: NUL (PostgreSQL cannot store it),
# line breaks and separators, a lone surrogate (not UTF-8).
ANY_TEXT = st.text(
    st.characters(exclude_categories=()) | st.sampled_from("\x00\r\n\u2028\ud800"),
    max_size=12,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def encode_event(event_id: int, event: Event) -> bytes:
    """Encode one event as the log and the SSE encoder do."""
    return encode_frames([to_frame(event_id, event)])


def json_objects(model: type[ChatRequest] | type[ProseRequest]) -> st.SearchStrategy[Any]:
    """Return objects near the model's schema: valid ones, with fields of any JSON value."""
    fields = st.sampled_from(sorted(model.model_fields))
    components = openapi_document()["components"]
    valid = from_schema({**components["schemas"][model.__name__], "components": components})
    # Text is what most fields take, so it is drawn as often as any other JSON value.
    changes = st.dictionaries(fields | ANY_TEXT, ANY_TEXT | JSON_VALUES, max_size=3)
    return st.builds(lambda body, changed: {**body, **changed}, valid, changes)


async def post(path: str, raw: bytes) -> tuple[int, str, bytes, int]:
    """POST `raw`; return status, content type, body, and how many rows it added."""
    before = await StreamSession.objects.acount()
    exchange = await request("POST", path, body=raw, headers={"content-type": "application/json"})
    body = await exchange.read_all()
    added = await StreamSession.objects.acount() - before
    return exchange.status, exchange.headers["content-type"], body, added


async def assert_stream_or_json_error(path: str, raw: bytes) -> None:
    """Assert what a client may rely on: a whole stream and one row, or `{"detail"}` and none."""
    status, content_type, body, added = await post(path, raw)
    if status == 200:
        assert content_type == "text/event-stream; charset=utf-8"
        assert body.startswith(b": stream open\n\n")
        assert all(frame.event != "error" for frame in parse(body)), body[-300:]
        assert added == 1
    else:
        assert status in (400, 403, 413, 422), (status, body)
        assert content_type == "application/json"
        assert json.loads(body)["detail"]
        assert added == 0


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None)
@given(body=json_objects(ChatRequest))
async def test_any_chat_object_streams_or_is_refused_in_json(body: dict[str, Any]) -> None:
    await assert_stream_or_json_error("/api/chat/stream", json.dumps(body).encode())


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None)
@given(body=json_objects(ProseRequest))
async def test_any_prose_object_streams_or_is_refused_in_json(body: dict[str, Any]) -> None:
    await assert_stream_or_json_error("/api/prose/generate", json.dumps(body).encode())


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None)
@given(
    path=st.sampled_from(["/api/chat/stream", "/api/prose/generate"]),
    raw=st.binary(max_size=40) | JSON_VALUES.map(lambda value: json.dumps(value).encode()),
)
async def test_any_bytes_stream_or_are_refused_in_json(path: str, raw: bytes) -> None:
    await assert_stream_or_json_error(path, raw)


# Digits, and digits int() reads differently (superscript two, Arabic-Indic one).
EVENT_IDS = st.from_regex(r"\A\s?[0-9\u00b2\u0661]{0,24}\s?\Z") | st.text(max_size=24)


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None)
@given(
    header=EVENT_IDS.filter(lambda text: "\r" not in text and "\n" not in text),
    query=EVENT_IDS,
)
async def test_any_last_event_id_is_read_or_refused_in_json(header: str, query: str) -> None:
    exchange = await request(
        "GET",
        f"/api/sessions/{uuid.uuid4()}/stream",
        headers={"last-event-id": header} if header else {},
        query=urlencode({"last_event_id": query}),
    )
    body = json.loads(await exchange.read_all())
    assert (exchange.status, body) in [
        (404, {"detail": "No such session."}),
        (422, {"detail": "Last-Event-ID must be a non-negative integer."}),
    ]


# What fuzzing found (each answered 500 or an HTML page before).


@pytest.mark.django_db(transaction=True)
async def test_json_nested_too_deeply_is_400() -> None:
    status, content_type, body, added = await post("/api/chat/stream", b"[" * 100_000)
    assert (status, content_type, added) == (400, "application/json", 0)
    assert json.loads(body) == {"detail": "Request body is not valid JSON: nested too deeply."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b'{"thread_id": "a\\u0000b"}', ["body", "thread_id"]),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\u0000"}]}]}',
            ["body", "messages", 0, "content", 0, "text"],
        ),
    ],
)
async def test_nul_in_a_kept_field_is_422_on_every_database(raw: bytes, loc: list[Any]) -> None:
    # PostgreSQL cannot store U+0000: the row's insert failed with a 500.
    status, _, body, added = await post("/api/chat/stream", raw)
    assert (status, added) == (422, 0)
    assert json.loads(body)["detail"] == [
        {
            "type": "string_nul",
            "loc": loc,
            "msg": "Text must not contain the NUL character (U+0000).",
        }
    ]


@pytest.mark.django_db(transaction=True)
@override_settings(STREAM_ENABLE_MCP=True)
async def test_mcp_settings_nested_too_deeply_for_the_record_are_422() -> None:
    # pydantic could not serialise them into the session's request_params: a 500.
    def nested(depth: int) -> bytes:
        return b'{"mcp_settings": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"

    status, _, body, added = await post("/api/chat/stream", nested(300))
    assert (status, added) == (422, 0)
    assert json.loads(body)["detail"] == [
        {"type": "too_deep", "loc": ["body", "mcp_settings", *"a" * 63], "msg": DEPTH_MESSAGE}
    ]
    status, _, _, added = await post("/api/chat/stream", nested(10))
    assert (status, added) == (200, 1)


@pytest.mark.django_db(transaction=True)
async def test_nul_in_an_ignored_field_is_ignored() -> None:
    status, _, _, added = await post("/api/chat/stream", b'{"unknown": "\\u0000"}')
    assert (status, added) == (200, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("last_event_id", ["²", "9" * 5000, "1" + "0" * 18, "-1", "1.0", " "])
async def test_last_event_id_that_is_not_a_small_integer_is_422(last_event_id: str) -> None:
    for headers, query in [({"last-event-id": last_event_id}, ""), ({}, "last_event_id=")]:
        exchange = await request(
            "GET",
            f"/api/sessions/{uuid.uuid4()}/stream",
            headers=headers,
            query=query + (last_event_id if query else ""),
        )
        body = json.loads(await exchange.read_all())
        assert exchange.status == 422
        assert body == {"detail": "Last-Event-ID must be a non-negative integer."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("last_event_id", ["0", "007", "9" * 18])
async def test_last_event_id_up_to_18_digits_is_read(last_event_id: str) -> None:
    exchange = await request(
        "GET", f"/api/sessions/{uuid.uuid4()}/stream", headers={"last-event-id": last_event_id}
    )
    assert json.loads(await exchange.read_all()) == {"detail": "No such session."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/not-a-uuid"),
        ("POST", "/api/sessions/not-a-uuid/cancel"),
        ("GET", "/api/sessions/%00/stream"),
        ("DELETE", "/api/no/such/endpoint"),
    ],
)
async def test_unknown_api_paths_are_404_json(method: str, path: str) -> None:
    exchange = await request(method, path)
    body = await exchange.read_all()
    assert (exchange.status, exchange.headers["content-type"]) == (404, "application/json")
    assert json.loads(body) == {"detail": "Not Found"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/chat/stream", "POST, OPTIONS"),
        ("PUT", "/api/prose/generate", "POST, OPTIONS"),
        ("POST", "/api/config", "GET, HEAD, OPTIONS"),
        ("DELETE", "/healthz", "GET, HEAD, OPTIONS"),
        ("PATCH", f"/api/sessions/{uuid.UUID(int=1)}", "GET, HEAD, OPTIONS"),
        ("GET", f"/api/sessions/{uuid.UUID(int=1)}/cancel", "POST, OPTIONS"),
        ("POST", "/api/openapi.json", "GET, HEAD, OPTIONS"),
    ],
)
async def test_wrong_method_is_405_json(method: str, path: str, allow: str) -> None:
    # Without a token or cookie, Django's CSRF check answered POST/DELETE/PATCH with HTML 403.
    exchange = await request(method, path)
    body = await exchange.read_all()
    assert (exchange.status, exchange.headers["content-type"]) == (405, "application/json")
    assert exchange.headers["allow"] == allow
    assert json.loads(body) == {"detail": "Method Not Allowed"}


# The SSE encoder.

JSON_DATA = st.dictionaries(
    st.text(),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)
NAMES = st.text(max_size=20)
EVENTS = st.builds(Event, NAMES, JSON_DATA | st.text())


def expected_name(name: str) -> str:
    """Return the event type a standard parser reports: line breaks dropped, default message."""
    return name.replace("\r", "").replace("\n", "") or "message"


def expected_data(data: Any) -> str:
    if isinstance(data, str):
        return data.replace("\r\n", "\n").replace("\r", "\n")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@given(event_id=st.integers(min_value=1), name=NAMES, data=JSON_DATA)
def test_any_json_data_and_name_are_rebuilt_by_a_standard_parser(
    event_id: int, name: str, data: dict[str, Any]
) -> None:
    (frame,) = parse(encode_event(event_id, Event(name, data)))
    assert (frame.id, frame.event, frame.json()) == (str(event_id), expected_name(name), data)


@settings(suppress_health_check=[HealthCheck.too_slow])  # whole streams of nested JSON
@given(
    items=st.lists(st.tuples(EVENTS, st.lists(st.text(), max_size=2)), max_size=8),
)
def test_a_stream_of_frames_and_comments_is_rebuilt_event_by_event(
    items: list[tuple[Event, list[str]]],
) -> None:
    numbered = [(event_id, event) for event_id, (event, _) in enumerate(items, start=1)]
    body = encode_comment("stream open")
    for event_id, (event, comments) in enumerate(items, start=1):
        body += encode_event(event_id, event) + b"".join(map(encode_comment, comments))

    frames = [to_frame(i, e) for i, e in numbered]
    assert encode_frames(frames) == b"".join(encode_event(i, e) for i, e in numbered)
    assert [(f.id, f.event, f.data) for f in parse(body)] == [
        (str(i), expected_name(e.name), expected_data(e.data)) for i, e in numbered
    ]


@given(name=NAMES.filter(lambda n: expected_name(n) != "message"), data=JSON_DATA)
def test_deerflow_client_reads_the_same_json_event(name: str, data: dict[str, Any]) -> None:
    # It splits on "\n\n" and reads `key: value` lines: compact JSON never breaks a frame.
    body = encode_comment("ping") + encode_event(1, Event(name, data)) + encode_comment("ping")
    assert deerflow_events(body) == [(expected_name(name), data)]
