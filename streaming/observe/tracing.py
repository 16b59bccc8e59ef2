"""OpenTelemetry traces, when requirements-otel.txt is installed and OTEL_TRACES_EXPORTER asks.

Each stream run is one span (`stream.run`) from its start to its end, carrying its session
id, kind, transport, source, end reason and event count; the run's own task runs inside it,
so the HTTP requests its source makes through httpx2 (the openai SDK's client, of both
the `openai` and `langgraph` sources) or httpx are its children, and carry its trace on to
the model server in their `traceparent`. Its parent is the request's span (the ASGI
instrumentation's, which continues an incoming W3C `traceparent`). No span per event or
per body chunk: the ASGI instrumentation's `receive`/`send` spans are excluded. Without the
packages every function here is a no-op.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from streaming.conf import conf
from streaming.observe.context import StreamTags
from streaming.runs.endings import EndReason, Status

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.httpx import (
        HTTPX2ClientInstrumentor,
        HTTPXClientInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
except ImportError:  # pragma: no cover - the optional requirements are not installed
    INSTALLED = False
else:
    INSTALLED = True

SPAN_NAME = "stream.run"
_configured = {"done": False}


def parent_context() -> Any:
    """Return the caller's tracing context (the request's span), None without OpenTelemetry."""
    return otel_context.get_current() if INSTALLED else None


class RunSpan:
    """The span of one stream run, current in the run's own context once entered."""

    __slots__ = ("_span",)

    def __init__(self, tags: StreamTags, parent: Any) -> None:
        self._span: Any = None
        if INSTALLED:
            self._span = trace.get_tracer(__name__).start_span(
                SPAN_NAME,
                context=parent,
                attributes={
                    "stream.session_id": tags.session_id,
                    "stream.kind": tags.kind,
                    "stream.transport": tags.transport,
                    "stream.source": tags.source,
                },
            )
            otel_context.attach(trace.set_span_in_context(self._span))

    def end(self, reason: EndReason, events: int) -> None:
        """Record how the run ended and close its span."""
        if self._span is None:
            return
        self._span.set_attribute("stream.end_reason", reason.value or "none")
        self._span.set_attribute("stream.status", str(reason.status))
        self._span.set_attribute("stream.events", events)
        if reason.status is Status.FAILED:
            self._span.set_status(trace.Status(trace.StatusCode.ERROR))
        self._span.end()


def instrument(app: Any) -> Any:
    """Return `app` traced by OpenTelemetry's ASGI middleware, without per-message spans."""
    if not INSTALLED:
        return app
    return OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])


def traced(app: Any) -> Any:
    """Return `app` traced when OTEL_TRACES_EXPORTER names an exporter, else `app` itself."""
    exporter = conf.otel_traces_exporter
    if not INSTALLED or exporter in ("", "none"):
        return app
    _configure(exporter)
    instrument_clients()
    return instrument(app)


def instrument_clients() -> None:
    """Trace every httpx2 (and httpx, if installed) client's requests, once per process."""
    if not INSTALLED:
        return
    instrumentors: list[Any] = [HTTPX2ClientInstrumentor()]
    if importlib.util.find_spec("httpx") is not None:  # only the older openai SDKs use it
        instrumentors.append(HTTPXClientInstrumentor())
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def _configure(exporter: str) -> None:
    """Install the SDK's tracer provider with `exporter` (`otlp` or `console`), once."""
    if _configured["done"]:
        return
    provider = TracerProvider()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: read by the SDK
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured["done"] = True
