"""OpenTelemetry: one span per stream run, none per chunk, the parent from `traceparent`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from project.asgi import application
from streaming.observe import tracing
from streaming.observe.tracing import SPAN_NAME, instrument
from tests.support.fake_openai import FakeOpenAI, answer, stream
from tests.support.sseparse import deerflow_events, parse

pytestmark = pytest.mark.django_db(transaction=True)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _tracer_provider() -> None:
    """Install the SDK once per process (OpenTelemetry allows one global provider)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture(autouse=True)
def spans() -> InMemorySpanExporter:
    EXPORTER.clear()
    return EXPORTER


async def post_traced(path: str, payload: object, app: Any = None) -> bytes:
    """POST through the traced application with a `traceparent`; return the whole body."""
    body = json.dumps(payload).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"traceparent", TRACEPARENT.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app or instrument(application), scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    received = b""
    while True:
        message = await communicator.receive_output(5)
        if message["type"] == "http.response.body":
            chunk: bytes = message.get("body", b"")
            received += chunk
            if not message.get("more_body", False):
                break
    await communicator.wait(5)
    return received


async def test_one_run_span_per_stream_and_none_per_chunk(spans, use_source, probe) -> None:
    use_source("CountingSource")
    body = await post_traced("/api/chat/stream", {"thread_id": "t-1"})
    frames = parse(body)
    assert len(frames) == 5

    finished = spans.get_finished_spans()
    [run] = [span for span in finished if span.name == SPAN_NAME]
    assert dict(run.attributes or {}) == {
        "stream.session_id": run.attributes["stream.session_id"],
        "stream.kind": "chat",
        "stream.transport": "sse",
        "stream.source": "tests.support.sources.CountingSource",
        "stream.end_reason": "none",
        "stream.status": "completed",
        "stream.events": 5,
    }
    # The request's span and the run's: no span per body chunk or per event.
    assert [span.name for span in finished] == [SPAN_NAME, "POST /api/chat/stream"]


async def test_the_run_continues_the_incoming_traceparent(spans, use_source) -> None:
    use_source("FailingSource")
    await post_traced("/api/chat/stream", {})

    finished = {span.name: span for span in spans.get_finished_spans()}
    run, request = finished[SPAN_NAME], finished["POST /api/chat/stream"]
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert run.parent is not None
    assert run.parent.span_id == request.context.span_id
    assert request.parent is not None
    assert format(request.parent.span_id, "016x") == PARENT_SPAN_ID
    assert run.attributes["stream.end_reason"] == "error"
    assert run.status.status_code is trace.StatusCode.ERROR


async def test_a_websocket_stream_gets_the_same_run_span(spans, use_source, probe) -> None:
    use_source("CountingSource")
    communicator = WebsocketCommunicator(instrument(application), "/ws/stream/")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "chat.start", "request": {}})
    while (await communicator.receive_json_from(5))["type"] != "end":
        pass
    await communicator.disconnect()

    [run] = [span for span in spans.get_finished_spans() if span.name == SPAN_NAME]
    assert run.attributes["stream.transport"] == "websocket"
    assert run.attributes["stream.events"] == 5


@pytest.fixture
def switched_on() -> Iterator[None]:
    """Let `traced()` find the SDK configured (this module's provider) and undo its patching."""
    configured = dict(tracing._configured)
    tracing._configured["done"] = True
    yield
    tracing._configured.update(configured)
    for instrumentor in (HTTPX2ClientInstrumentor(), HTTPXClientInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


async def ask_fake_openai(app: Any) -> tuple[list[tuple[str, dict[str, Any]]], FakeOpenAI]:
    """Stream a chat answer from the openai source through `app`; return its events."""
    async with FakeOpenAI(stream(answer("Tea ", "is old."))).running() as fake:
        configured = {
            "STREAM_CHAT_SOURCE": "openai",
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-test",
            "LLM_MODEL": "fake-model",
            "OPENAI_MAX_RETRIES": 0,
        }
        with override_settings(**configured):
            body = await post_traced("/api/chat/stream", {"thread_id": "tea"}, app)
    return deerflow_events(body), fake


async def test_the_openai_sources_request_is_a_child_of_the_run_span(spans, switched_on) -> None:
    with override_settings(OTEL_TRACES_EXPORTER="otlp"):
        app = tracing.traced(application)
    events, fake = await ask_fake_openai(app)
    assert "".join(data.get("content", "") for _, data in events) == "Tea is old."

    finished = spans.get_finished_spans()
    [run] = [span for span in finished if span.name == SPAN_NAME]
    [upstream] = [span for span in finished if span.kind is trace.SpanKind.CLIENT]
    assert upstream.parent is not None
    assert upstream.parent.span_id == run.context.span_id
    # The instrumentation's default (pre-stable) HTTP attribute names.
    attributes = dict(upstream.attributes or {})
    assert attributes == {**attributes, "http.method": "POST", "http.status_code": 200}
    assert str(attributes["http.url"]).endswith("/v1/chat/completions")
    # The model server got the run's trace, with the HTTP call's span as its parent.
    [request] = fake.connections
    version, trace_id, parent_id, _ = request.headers["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert parent_id == format(upstream.context.span_id, "016x")


async def test_without_the_switch_the_upstream_call_is_not_traced(spans) -> None:
    with override_settings(OTEL_TRACES_EXPORTER="none"):
        app = tracing.traced(application)
    assert app is application
    _, fake = await ask_fake_openai(instrument(application))

    assert [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.CLIENT] == []
    assert "traceparent" not in fake.connections[0].headers
