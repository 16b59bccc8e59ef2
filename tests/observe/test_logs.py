"""Log lines: JSON when asked, and every line of a stream names its session."""

from __future__ import annotations

import json
import logging

import pytest

from streaming.observe.context import StreamContextFilter, StreamTags, current_stream
from streaming.observe.logs import JsonFormatter
from tests.support.asgi import post_json


def formatted(record: logging.LogRecord) -> dict[str, object]:
    StreamContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("streaming.x", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_line_outside_a_stream_has_no_session() -> None:
    entry = formatted(record("Refused with %d: %s", 503, "full"))
    assert entry["message"] == "Refused with 503: full"
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "streaming.x"
    assert "session_id" not in entry


def test_a_line_inside_a_stream_carries_its_session_thread_and_kind() -> None:
    token = current_stream.set(StreamTags("abc", "thread-1", "chat"))
    try:
        entry = formatted(record("line\nwith a break"))
    finally:
        current_stream.reset(token)
    assert entry["message"] == "line\nwith a break"
    assert (entry["session_id"], entry["thread_id"], entry["kind"]) == ("abc", "thread-1", "chat")


def test_a_traceback_stays_inside_the_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        entry = formatted(record("failed", exc=exc))
    assert "ValueError: boom" in str(entry["exception"])


@pytest.mark.django_db(transaction=True)
async def test_every_line_a_stream_logs_names_it_without_the_call_site_saying_so(
    caplog: pytest.LogCaptureFixture, use_source
) -> None:
    use_source("FailingSource")
    caplog.handler.addFilter(StreamContextFilter())
    with caplog.at_level(logging.INFO):
        exchange = await post_json("/api/chat/stream", {"thread_id": "t-9"})
        await exchange.read_all()
    session_id = exchange.headers["x-stream-session-id"]
    lines = [r for r in caplog.records if session_id in r.getMessage()]
    assert any("failed" in r.getMessage() for r in lines)  # logged by the run's task
    assert {(r.session_id, r.thread_id, r.kind) for r in lines} == {  # type: ignore[attr-defined]
        (session_id, "t-9", "chat")
    }
