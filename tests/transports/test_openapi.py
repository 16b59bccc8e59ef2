"""The OpenAPI document stays true: valid 3.1, every route, and what the views really do."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.urls import URLPattern, get_resolver
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from streaming.api.bodies import validate
from streaming.api.errors import ApiError
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.conf import AUTH_CHOICES, AuthMode
from streaming.runs import webhooks
from streaming.transports.http import ApiNotFoundView
from streaming.transports.openapi import openapi_document
from tests.support.asgi import HttpExchange, post_json, request
from tests.support.rows import make_session
from tests.support.sources import Probe
from tests.support.sseparse import parse

DOC = openapi_document()
COMPONENTS = DOC["components"]
pytestmark = pytest.mark.django_db(transaction=True)


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Return a validator of `schema`, with the document's components for its `$ref`s."""
    return Draft202012Validator(
        {**schema, "components": COMPONENTS}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def resolve(item: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (`#/components/...`) to what it names."""
    while "$ref" in item:
        _, group, name = item["$ref"].removeprefix("#/").split("/")
        item = COMPONENTS[group][name]
    return item


def event_branches(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the documented event schemas of a stream, by event name."""
    schema = resolve(schema)
    if "anyOf" in schema:
        return {k: v for part in schema["anyOf"] for k, v in event_branches(part).items()}
    return {branch["properties"]["event"]["const"]: branch for branch in schema["oneOf"]}


def assert_documented(exchange: HttpExchange, path: str, method: str) -> Any:
    """Assert the answer is documented: status, media type, headers, body; return the body."""
    # The document of the mode the request ran in.
    response = resolve(openapi_document()["paths"][path][method]["responses"][str(exchange.status)])
    for header in response.get("headers", {}):
        assert header.lower() in exchange.headers, header
    ((media_type, content),) = response["content"].items()
    assert exchange.headers["content-type"].split(";")[0] == media_type
    if media_type == "application/json":
        body = json.loads(exchange.body)
        validator(content["schema"]).validate(body)
        return body
    assert media_type == "text/event-stream"
    branches = event_branches(content["schema"])
    frames = parse(exchange.body)
    for frame in frames:
        branch = branches[frame.event]
        validator(branch).validate({"id": frame.id, "event": frame.event, "data": frame.data})
        if content_schema := branch["properties"]["data"].get("contentSchema"):
            validator(content_schema).validate(frame.json())
    return frames


# The document itself.


@pytest.mark.parametrize("mode", AUTH_CHOICES)
def test_document_is_valid_openapi_3_1(mode: AuthMode) -> None:
    OpenAPIV31SpecValidator(openapi_document(mode)).validate()
    assert openapi_document(mode)["openapi"].startswith("3.1.")


@override_settings(STREAM_API_TOKEN="s3cret")
async def test_document_is_served_without_a_token() -> None:
    exchange = await request("GET", "/api/openapi.json")
    assert exchange.status == 200
    assert exchange.headers["content-type"] == "application/json"
    assert json.loads(await exchange.read_all()) == openapi_document("token")


@override_settings(STREAM_AUTH="users")
async def test_the_document_served_is_the_servers_modes() -> None:
    exchange = await request("GET", "/api/openapi.json")
    assert json.loads(await exchange.read_all()) == openapi_document("users")


# What a path converter matches, as the document says it.
PATH_SCHEMAS = {"uuid": {"type": "string", "format": "uuid"}, "str": {"type": "string"}}


def test_every_route_is_documented_and_every_path_is_a_route() -> None:
    prefix, resolver = get_resolver().namespace_dict["streaming"]
    routes: dict[str, set[str]] = {}
    patterns = list(resolver.url_patterns)
    # The catch-all answers 404 to every method on the rest of /api/; it must come last.
    assert patterns[-1].callback.view_class is ApiNotFoundView  # type: ignore[union-attr]
    for pattern in patterns[:-1]:
        assert isinstance(pattern, URLPattern)
        route = prefix + str(pattern.pattern)
        for converter, name in re.findall(r"<(\w+):(\w+)>", route):
            documented = resolve(DOC["paths"][_openapi_path(route)])["parameters"]
            assert {"name": name, "in": "path", "required": True} | {
                "schema": PATH_SCHEMAS[converter]
            } in documented
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        methods = {m for m in view.http_method_names if m != "options" and hasattr(view, m)}
        routes[_openapi_path(route)] = methods

    documented = {path: set(item) - {"parameters"} for path, item in DOC["paths"].items()}
    assert documented == routes


def _openapi_path(route: str) -> str:
    return "/" + re.sub(r"<\w+:(\w+)>", r"{\1}", route)


def guarded_operations(doc: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Return the operations that require a caller, with their requirements."""
    return {
        (path, method): operation["security"]
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method != "parameters" and "security" in operation
    }


def statuses(doc: dict[str, Any]) -> set[str]:
    return {
        status
        for item in doc["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
        for status in operation["responses"]
    }


def test_the_open_mode_documents_no_security_and_no_401() -> None:
    doc = openapi_document("open")
    assert "securitySchemes" not in doc["components"]
    assert guarded_operations(doc) == {}
    # Observer links and /metrics (STREAM_METRICS_TOKEN) have refusals of their own.
    assert "401" not in statuses(
        {"paths": {k: v for k, v in doc["paths"].items() if "observe" not in k and k != "/metrics"}}
    )


def test_the_users_mode_documents_a_personal_token_or_the_session_cookie() -> None:
    doc = openapi_document("users")
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == ("cookie", "sessionid")
    assert set(map(str, guarded_operations(doc).values())) == {
        str([{"bearerAuth": []}, {"cookieAuth": []}])
    }
    chat = doc["paths"]["/api/chat/stream"]["post"]["responses"]
    record = doc["paths"]["/api/sessions/{session_id}"]["get"]["responses"]
    assert set(chat["403"]["content"]["application/json"]["examples"]) >= {"csrf_failed"}
    assert set(record["401"]["content"]["application/json"]["examples"]) == {
        "bad_token",
        "sign_in",
    }
    assert "403" not in record  # reading needs no CSRF token


def test_token_is_documented_where_the_views_check_it() -> None:
    doc = openapi_document("token")
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    guarded = guarded_operations(doc)
    assert set(map(str, guarded.values())) == {str([{"bearerAuth": []}])}
    assert set(guarded) == {
        ("/api/chat/stream", "post"),
        ("/api/prose/generate", "post"),
        ("/api/sessions/{session_id}", "get"),
        ("/api/sessions/{session_id}/cancel", "post"),
        ("/api/sessions/{session_id}/stream", "get"),
        ("/api/sessions/{session_id}/observer-link", "post"),
        ("/api/threads/{thread_id}/sessions", "get"),
    }


@override_settings(STREAM_API_TOKEN="s3cret")
@pytest.mark.parametrize(
    ("method", "path", "guarded"),
    [
        ("POST", "/api/chat/stream", True),
        ("POST", "/api/prose/generate", True),
        ("GET", "/api/sessions/00000000-0000-0000-0000-000000000001", True),
        ("POST", "/api/sessions/00000000-0000-0000-0000-000000000001/cancel", True),
        ("GET", "/api/sessions/00000000-0000-0000-0000-000000000001/stream", True),
        ("POST", "/api/sessions/00000000-0000-0000-0000-000000000001/observer-link", True),
        ("GET", "/api/threads/00000000-0000-0000-0000-000000000001/sessions", True),
        ("GET", "/api/config", False),
        ("GET", "/healthz", False),
        ("GET", "/api/openapi.json", False),
    ],
)
async def test_views_check_the_token_where_documented(
    method: str, path: str, guarded: bool
) -> None:
    exchange = await request(method, path)
    await exchange.read_all()
    assert (exchange.status == 401) is guarded
    if guarded:
        template = "{thread_id}" if path.startswith("/api/threads/") else "{session_id}"
        assert_documented(
            exchange, path.replace("00000000-0000-0000-0000-000000000001", template), method.lower()
        )


# Request bodies: what the document allows, the views accept.

CHAT_SCHEMA = {**COMPONENTS["schemas"]["ChatRequest"], "components": COMPONENTS}
PROSE_SCHEMA = {**COMPONENTS["schemas"]["ProseRequest"], "components": COMPONENTS}
# A non-empty `mcp_settings` is well-formed but refused with 403 (below) unless MCP is on.
CHAT_BODIES = from_schema(CHAT_SCHEMA).map(
    lambda body: {**cast(dict[str, Any], body), "mcp_settings": None}
)


@settings(max_examples=40, deadline=None)
@given(body=CHAT_BODIES)
async def test_any_documented_chat_body_streams(body: dict[str, Any]) -> None:
    exchange = await post_json("/api/chat/stream", body)
    await exchange.read_all()
    frames = assert_documented(exchange, "/api/chat/stream", "post")
    assert exchange.status == 200
    assert frames
    assert frames[-1].event != "error"


@settings(max_examples=40, deadline=None)
@given(body=from_schema(PROSE_SCHEMA))
async def test_any_documented_prose_body_streams(body: dict[str, Any]) -> None:
    exchange = await post_json("/api/prose/generate", body)
    await exchange.read_all()
    frames = assert_documented(exchange, "/api/prose/generate", "post")
    assert exchange.status == 200
    assert all(frame.event == "message" for frame in frames)


async def test_non_empty_mcp_settings_are_403_as_documented() -> None:
    exchange = await post_json("/api/chat/stream", {"mcp_settings": {"servers": {}}})
    await exchange.read_all()
    assert exchange.status == 403
    assert_documented(exchange, "/api/chat/stream", "post")


# ... and what the views refuse, the document refuses too.

JSON_TEXT = st.text(max_size=8)  # JSON text: no lone surrogates (RFC 8259 strings are Unicode)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=6,
)


def near(schema: dict[str, Any], fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Return documented bodies with up to two fields set to any JSON value."""
    changes = st.dictionaries(st.sampled_from(fields), JSON_VALUES, max_size=2)
    return st.builds(lambda body, changed: body | changed, from_schema(schema), changes)


def inside_mcp_settings(issues: list[dict[str, Any]]) -> bool:
    """Return whether every issue is U+0000 or depth inside `mcp_settings`' values."""
    return all(
        issue["type"] in ("string_nul", "too_deep")
        and issue["loc"][:2] == ["body", "mcp_settings"]
        and len(issue["loc"]) >= 3
        for issue in issues
    )


@settings(max_examples=60, deadline=None)
@given(
    case=st.tuples(st.just("/api/chat/stream"), near(CHAT_SCHEMA, list(CHAT_SCHEMA["properties"])))
    | st.tuples(
        st.just("/api/prose/generate"), near(PROSE_SCHEMA, list(PROSE_SCHEMA["properties"]))
    )
)
async def test_what_the_views_refuse_the_document_refuses(case: tuple[str, dict[str, Any]]) -> None:
    path, body = case
    schema = CHAT_SCHEMA if path == "/api/chat/stream" else PROSE_SCHEMA
    allowed = validator(schema).is_valid(body)
    exchange = await post_json(path, body)
    await exchange.read_all()
    assert_documented(exchange, path, "post")
    if exchange.status == 422:
        assert not allowed or inside_mcp_settings(json.loads(exchange.body)["detail"])
    if allowed and exchange.status == 422:
        return  # The one rule the document states in words (it would need recursion).
    if allowed:
        assert exchange.status == 200 or (exchange.status == 403 and body.get("mcp_settings"))


@pytest.mark.parametrize(
    "body", [{"debug": "true"}, {"auto_accepted_plan": 1}, {"max_step_num": "4"}]
)
async def test_the_views_also_accept_what_pydantic_converts_as_deer_flow_does(
    body: dict[str, Any],
) -> None:
    # The document describes what clients send; like FastAPI, the views are lenient.
    assert not validator(CHAT_SCHEMA).is_valid(body)
    exchange = await post_json("/api/chat/stream", body)
    await exchange.read_all()
    assert exchange.status == 200
    assert "lax" in DOC["info"]["description"]


# Responses: every answer of the JSON endpoints and the streams matches the document.


async def test_config_and_health_answers_are_documented() -> None:
    for path in ("/api/config", "/healthz"):
        exchange = await request("GET", path)
        await exchange.read_all()
        assert exchange.status == 200
        assert_documented(exchange, path, "get")


@pytest.mark.parametrize(
    ("raw", "status", "settings_"),
    [
        (b"{nope", 400, {}),
        (b'{"max_step_num": 0}', 422, {}),
        (b'{"messages": [' + b'{"role": "user", "content": "x"},' * 40 + b"{}]}", 413, {}),
        (b"{}", 503, {"STREAM_MAX_STREAMS": 0}),
    ],
)
async def test_refusals_of_a_stream_are_documented(
    raw: bytes, status: int, settings_: dict[str, Any]
) -> None:
    with override_settings(STREAM_MAX_BODY_BYTES=1000, **settings_):
        exchange = await request(
            "POST", "/api/chat/stream", body=raw, headers={"content-type": "application/json"}
        )
        await exchange.read_all()
    assert exchange.status == status
    assert_documented(exchange, "/api/chat/stream", "post")


async def test_a_session_cancelled_and_resumed_answers_as_documented(
    probe: Probe, use_source
) -> None:
    use_source("IdleSource")
    stream = await post_json("/api/chat/stream", {"thread_id": "doc"})
    await stream.read_until(b"id: 1\n")
    session_id = stream.headers["x-stream-session-id"]
    session_path = f"/api/sessions/{session_id}"

    running = await request("GET", session_path)
    await running.read_all()
    cancel = await request("POST", f"{session_path}/cancel")
    await cancel.read_all()
    await stream.read_all()
    again = await request("POST", f"{session_path}/cancel")
    await again.read_all()
    ended = await request("GET", session_path)
    await ended.read_all()
    replay = await request("GET", f"{session_path}/stream", headers={"last-event-id": "1"})
    await replay.read_all()

    assert [e.status for e in (running, cancel, again, ended, replay)] == [200, 202, 409, 200, 200]
    assert assert_documented(running, "/api/sessions/{session_id}", "get")["status"] == "running"
    assert assert_documented(cancel, "/api/sessions/{session_id}/cancel", "post")
    assert assert_documented(again, "/api/sessions/{session_id}/cancel", "post")
    assert assert_documented(ended, "/api/sessions/{session_id}", "get")["status"] == "cancelled"
    frames = assert_documented(stream, "/api/chat/stream", "post")
    assert frames[-1].json()["reason"] == "cancelled"
    resumed = assert_documented(replay, "/api/sessions/{session_id}/stream", "get")
    assert [f.id for f in resumed] == ["2"]


async def test_a_threads_sessions_and_a_cancel_that_waits_answer_as_documented(
    probe: Probe, use_source
) -> None:
    use_source("IdleSource")
    stream = await post_json("/api/chat/stream", {"thread_id": "doc-thread"})
    await stream.read_until(b"id: 1\n")
    session_path = f"/api/sessions/{stream.headers['x-stream-session-id']}"

    listed = await request("GET", "/api/threads/doc-thread/sessions")
    await listed.read_all()
    waited = await request("POST", f"{session_path}/cancel", query="wait=5")
    await waited.read_all()
    await stream.read_all()

    thread = "/api/threads/{thread_id}/sessions"
    [running] = assert_documented(listed, thread, "get")["sessions"]
    assert (running["status"], running["last_event_id"]) == ("running", 1)
    assert waited.status == 200
    final = assert_documented(waited, "/api/sessions/{session_id}/cancel", "post")
    assert (final["status"], final["end_reason"]) == ("cancelled", "user_cancel")


async def test_unknown_and_forgotten_sessions_answer_as_documented() -> None:
    forgotten = (await sync_to_async(make_session)()).id
    answers = {
        ("get", "/api/sessions/{session_id}", "00000000-0000-0000-0000-000000000002"): 404,
        ("post", "/api/sessions/{session_id}/cancel", "00000000-0000-0000-0000-000000000002"): 404,
        ("get", "/api/sessions/{session_id}/stream", "00000000-0000-0000-0000-000000000002"): 404,
        ("get", "/api/sessions/{session_id}/stream", str(forgotten)): 410,
    }
    for (method, path, session_id), status in answers.items():
        exchange = await request(method.upper(), path.replace("{session_id}", session_id))
        await exchange.read_all()
        assert exchange.status == status
        assert_documented(exchange, path, method)
    bad_id = await request(
        "GET", f"/api/sessions/{forgotten}/stream", headers={"last-event-id": "x"}
    )
    await bad_id.read_all()
    assert bad_id.status == 422
    assert_documented(bad_id, "/api/sessions/{session_id}/stream", "get")


async def test_chat_events_are_documented() -> None:
    question = [{"role": "user", "content": "Q?"}]
    runs = [
        ("demo", {"messages": question, "auto_accepted_plan": True}),
        ("demo", {"messages": question, "enable_deep_thinking": True}),
        ("tests.support.sources.FailingSource", {}),
    ]
    seen = set()
    for source, body in runs:
        with override_settings(STREAM_CHAT_SOURCE=source):
            exchange = await post_json("/api/chat/stream", body)
            await exchange.read_all()
        seen |= {frame.event for frame in assert_documented(exchange, "/api/chat/stream", "post")}
    # Every documented event but `citations`, which no source here sends.
    assert seen == set(event_branches(_ref("ChatEvent"))) - {"citations"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


@override_settings(STREAM_DEMO_DELAY_MS=50, STREAM_TIMEOUT_SECONDS=0.12)
async def test_prose_error_event_is_documented() -> None:
    exchange = await post_json("/api/prose/generate", {"prompt": "text", "option": "longer"})
    await exchange.read_all()
    frames = assert_documented(exchange, "/api/prose/generate", "post")
    assert frames[-1].event == "error"
    assert frames[-1].json()["reason"] == "timeout"


# The `webhook` field, as this server's allow-list makes it.

ALLOWED = {"STREAM_WEBHOOK_ALLOWED_HOSTS": "hooks.example, 127.0.0.1, ::1"}


def webhook_admitted(model: type[ChatRequest | ProseRequest], body: dict[str, Any]) -> bool:
    """Return whether the views admit the body's `webhook` (422 if not)."""
    try:
        webhooks.allowed_target(validate(model, body).webhook)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return False
    return True


def allowed_schema(name: str) -> dict[str, Any]:
    """Return a request's schema in the document of a server that allows `ALLOWED`."""
    with override_settings(**ALLOWED):
        components = openapi_document()["components"]
    return {**components["schemas"][name], "components": components}


def test_without_allowed_hosts_the_document_takes_no_webhook() -> None:
    body = {"prompt": "x", "option": "fix"}
    assert validator(PROSE_SCHEMA).is_valid({**body, "webhook": None})
    assert not validator(PROSE_SCHEMA).is_valid({**body, "webhook": "https://hooks.example/"})
    assert not validator(CHAT_SCHEMA).is_valid({"webhook": "https://hooks.example/"})
    assert not webhook_admitted(ProseRequest, {**body, "webhook": "https://hooks.example/"})


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_documented_webhook_url_is_admitted(data: st.DataObject) -> None:
    url = data.draw(from_schema(allowed_schema("ChatRequest")["properties"]["webhook"]))
    with override_settings(**ALLOWED):
        assert webhook_admitted(ChatRequest, {"webhook": url})


@pytest.mark.parametrize(
    ("url", "documented"),
    [
        ("https://hooks.example/stream-ended?k=1", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:9/x", True),
        ("https://hooks.example.evil.test/", False),
        ("https://evil.test/?hooks.example", False),
        ("https://evil.test#@hooks.example", False),
        ("ftp://hooks.example/", False),
    ],
)
def test_the_documented_webhook_urls_are_those_admitted(url: str, documented: bool) -> None:
    body = {"prompt": "x", "option": "fix", "webhook": url}
    schema = allowed_schema("ProseRequest")
    assert Draft202012Validator(schema).is_valid(body) is documented
    with override_settings(**ALLOWED):
        assert webhook_admitted(ProseRequest, body) is documented
