"""Wire pins: what clients see, byte for byte, kept as golden files in `pins/` beside this.

Each test drives the public surface only (the ASGI application, over HTTP and the
WebSocket), writes down everything a client receives as a readable transcript, and
compares it with its golden file byte for byte:

- HTTP: the request (`>` lines), the status and every response header (`<` lines, sorted
  by name), then the response body exactly as sent (a body that does not end in a line
  break is followed by the line `\\ No newline at end of body`);
- WebSocket: the messages sent (`>`) and the exact text of every message received (`<`),
  then `(silence)` once nothing more arrives.

Only what is genuinely random is normalised: UUIDs (session ids, thread ids, message ids)
become `<uuid-N>` and the 24 hex digits of tool call ids `call_<hex-N>`, numbered by first
appearance within a test (so which ids repeat where is still pinned), and the timestamps
and duration of a session's record become `<timestamp>` / `<seconds>` (and so its
Content-Length `<length>`). UUIDs the tests choose themselves are kept as they are.

To regenerate the golden files after a deliberate change of the wire protocol:

    PIN_UPDATE=1 .venv/bin/pytest tests/transports/test_wire_pins.py

then review `git diff tests/transports/pins/`. Without `PIN_UPDATE=1` the tests compare and fail
with a diff (lines shown with escapes, so a changed `\\r` or trailing space is visible).

This module imports nothing from `streaming`: it must keep passing, unchanged, while the
app's modules are moved around.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from project.asgi import application
from tests.support.asgi import HttpExchange, request

pytestmark = pytest.mark.django_db(transaction=True)

PINS = Path(__file__).with_name("pins")
UPDATE = os.environ.get("PIN_UPDATE") == "1"
TIMEOUT = 10
# deer-flow's web client is served from another origin; every request here comes from it.
ORIGIN = "http://localhost:3000"
# Long enough that a demo stream is still waiting for its first event when the test acts.
IDLE_DEMO = override_settings(STREAM_DEMO_DELAY_MS=600_000)
BIG = override_settings(STREAM_MAX_BODY_BYTES=100)
TOO_BIG_FOR_DJANGO = override_settings(STREAM_MAX_BODY_BYTES=100, DATA_UPLOAD_MAX_MEMORY_SIZE=50)
TOKEN = override_settings(STREAM_API_TOKEN="s3cret")
MCP = override_settings(STREAM_ENABLE_MCP=True)
# Session ids the tests choose (kept as they are in the transcripts).
UNKNOWN_SESSION = "6d0e8a52-0000-4000-8000-000000000000"

UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
CALL_ID_PATTERN = re.compile(r"(?<=call_)[0-9a-f]{24}(?![0-9a-f])")
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
DURATION_PATTERN = re.compile(r'("duration_seconds": )(?:[0-9.e+-]+)')


class Normaliser:
    """Replace random values by placeholders numbered by first appearance."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        """Return `text` with its random values replaced."""
        text = UUID_PATTERN.sub(lambda m: self._placeholder("uuid", m[0]), text)
        text = CALL_ID_PATTERN.sub(lambda m: self._placeholder("hex", m[0]), text)
        text = TIMESTAMP_PATTERN.sub("<timestamp>", text)
        return DURATION_PATTERN.sub(r"\1<seconds>", text)

    def _placeholder(self, kind: str, value: str) -> str:
        if value == UNKNOWN_SESSION:
            return value
        key = f"{kind}:{value}"
        if key not in self._seen:
            count = sum(1 for k in self._seen if k.startswith(f"{kind}:"))
            self._seen[key] = f"<{kind}-{count + 1}>"
        return self._seen[key]


def _compact(payload: Any) -> bytes:
    """Encode a payload as a browser's JSON.stringify does: compact, not ASCII-escaped."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _show_sent(body: bytes) -> str:
    """Return a request body for a transcript line (shortened when long or not one line)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = ""
    if text and len(text) <= 600 and "\n" not in text and "\r" not in text:
        return text
    return f"{body[:80]!r}... ({len(body)} bytes)"


def _show_body(body: bytes) -> str:
    """Return a response body as it was sent (a marker when it does not end a line)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return f"(not UTF-8) {body!r}\n"
    if text and not text.endswith("\n"):
        text += "\n\\ No newline at end of body\n"
    return text


class Transcript:
    """What one test sent and received, by golden file, with its random values replaced."""

    def __init__(self) -> None:
        self.normalise = Normaliser()
        self.files: dict[str, list[str]] = {}

    def add(self, pin: str, text: str) -> None:
        """Append `text` to the transcript of golden file `pin`."""
        self.files.setdefault(pin, []).append(self.normalise(text))

    async def http(
        self,
        pin: str,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> HttpExchange:
        """Send a request (from deer-flow's origin), read the whole answer, record both."""
        exchange, sent = await self.send_http(
            method, path, body=body, json_body=json_body, headers=headers, query=query
        )
        await exchange.read_all()
        self.record_http(pin, sent, exchange)
        return exchange

    async def send_http(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> tuple[HttpExchange, str]:
        """Send a request; return the exchange (headers read) and the request's transcript."""
        all_headers = {"origin": ORIGIN, **(headers or {})}
        if json_body is not None:
            body = _compact(json_body)
            all_headers.setdefault("content-type", "application/json")
        exchange = await request(method, path, body=body, headers=all_headers, query=query)
        lines = [f"> {method} {path}{'?' + query if query else ''}"]
        lines += [f"> {name}: {value}" for name, value in sorted(all_headers.items())]
        if body:
            lines += [">", f"> {_show_sent(body)}"]
        return exchange, "\n".join(lines) + "\n"

    def record_http(self, pin: str, sent: str, exchange: HttpExchange) -> None:
        """Record a request and its whole answer (read to its end)."""
        assert exchange.finished
        headers = dict(exchange.headers)
        text = exchange.body.decode(errors="replace")
        if "content-length" in headers and (
            TIMESTAMP_PATTERN.search(text) or DURATION_PATTERN.search(text)
        ):
            # Timestamps and durations vary in length (isoformat() drops zero microseconds).
            headers["content-length"] = "<length>"
        lines = [f"< {exchange.status}"]
        lines += [f"< {name}: {value}" for name, value in sorted(headers.items())]
        lines.append("<")
        received = "\n".join(lines) + "\n" + _show_body(exchange.body)
        self.add(pin, ("\n" if pin in self.files else "") + sent + "\n" + received)

    def check(self) -> None:
        """Compare every transcript with its golden file (or write them with PIN_UPDATE=1)."""
        failures = []
        for pin, parts in self.files.items():
            path = PINS / pin
            actual = "".join(parts).encode()
            if UPDATE:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(actual)
            elif not path.exists():
                failures.append(f"{pin}: no golden file (write it with PIN_UPDATE=1)")
            elif (expected := path.read_bytes()) != actual:
                failures.append(_diff(pin, expected, actual))
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)


def _diff(pin: str, expected: bytes, actual: bytes) -> str:
    def lines(data: bytes) -> list[str]:
        text = data.decode(errors="backslashreplace")
        return [repr(line)[1:-1] + "\n" for line in text.splitlines(keepends=True)]

    diff = difflib.unified_diff(
        lines(expected), lines(actual), f"tests/transports/pins/{pin} (golden)", f"{pin} (now)"
    )
    return f"{pin} differs from its golden file:\n" + "".join(diff)


@pytest.fixture
def transcript() -> Transcript:
    """Return a fresh transcript; the test ends with `transcript.check()`."""
    return Transcript()


class Socket:
    """A WebSocket client that records what it sends and receives in a transcript."""

    def __init__(self, transcript: Transcript, pin: str) -> None:
        self.transcript = transcript
        self.pin = pin
        self.communicator: WebsocketCommunicator | None = None

    def _add(self, line: str) -> None:
        self.transcript.add(self.pin, line + "\n")

    async def connect(self, path: str = "/ws/stream/", origin: str = ORIGIN) -> bool:
        """Open the socket from `origin`; record whether it was accepted."""
        headers = [(b"origin", origin.encode())]
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(TIMEOUT)
        self._add(f"* connect {path} (origin: {origin})")
        if connected:
            self.communicator = communicator
            self._add("* accepted")
        else:
            self._add(f"* refused, close code {code}")
        return bool(connected)

    async def send(self, message: Any) -> None:
        """Send a JSON message (compact, as a browser's JSON.stringify)."""
        await self.send_text(_compact(message).decode())

    async def send_text(self, text: str) -> None:
        """Send a text message as it is."""
        assert self.communicator is not None
        await self.communicator.send_to(text_data=text)
        self._add(f"> {_show_sent(text.encode())}")

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        assert self.communicator is not None
        await self.communicator.send_to(bytes_data=data)
        self._add(f"> (binary) {data!r}")

    async def receive(self) -> dict[str, Any]:
        """Receive and record one message; return it parsed."""
        assert self.communicator is not None
        text = await self.communicator.receive_from(TIMEOUT)
        if not isinstance(text, str):
            self._add(f"< (binary) {text!r}")
            return {}
        self._add(f"< {text}")
        try:
            message = json.loads(text)
        except ValueError:
            return {}
        return message if isinstance(message, dict) else {}

    async def receive_until_end(self) -> list[dict[str, Any]]:
        """Receive messages up to the stream's `end` message."""
        messages = [await self.receive()]
        while messages[-1].get("type") != "end":
            messages.append(await self.receive())
        return messages

    async def close(self) -> None:
        """Record that nothing more arrives, then close the socket."""
        assert self.communicator is not None
        if await self.communicator.receive_nothing(0.2):
            self._add("(silence)")
        else:
            await self.receive()
        await self.communicator.disconnect(timeout=TIMEOUT)
        self._add("* closed")


# 1. The chat stream over SSE (deer-flow's requests, as its web client sends them).

QUESTION = "How do honey bees navigate?"
ACCEPTED = "Great! Let's get started."
# Non-ASCII text (an en dash, German quotes, a check mark) that must not be escaped.
GERMAN_QUESTION = "Wie funktioniert die Photosynthese in Grünalgen? \u2013 „Chlorophyll“ ✓"


def chat_request(thread_id: str | None, content: Any, **options: Any) -> dict[str, Any]:
    """Return a ChatRequest as deer-flow's web client sends it."""
    payload: dict[str, Any] = {"messages": [{"role": "user", "content": content}]}
    if thread_id is not None:
        payload["thread_id"] = thread_id
    payload.update(
        {
            "resources": [],
            "auto_accepted_plan": False,
            "enable_deep_thinking": False,
            "enable_background_investigation": True,
            "max_plan_iterations": 1,
            "max_step_num": 3,
            "max_search_results": 3,
            "report_style": "academic",
        }
    )
    payload.update(options)
    return payload


async def test_sse_chat_plan_then_accepted_follow_up(transcript: Transcript) -> None:
    # (a) A first question on a fixed thread ends in the plan's interrupt; (c) "Start
    # research" on the same thread researches that plan and writes the report.
    thread = "pins-sse-bees"
    await transcript.http(
        "sse_chat/a_first_question_interrupt.txt",
        "POST",
        "/api/chat/stream",
        json_body=chat_request(thread, QUESTION),
    )
    await transcript.http(
        "sse_chat/c_accepted_follow_up.txt",
        "POST",
        "/api/chat/stream",
        json_body=chat_request(thread, ACCEPTED, interrupt_feedback="accepted"),
    )
    transcript.check()


# (b) No thread id (deer-flow's "__default__": a new uuid), non-ASCII text, a plan of four
# steps with two search results each, straight on to the report.
AUTO_ACCEPTED = chat_request(
    None,
    GERMAN_QUESTION,
    auto_accepted_plan=True,
    max_step_num=4,
    max_search_results=2,
    report_style="news",
    locale="de-DE",
)


async def test_sse_chat_auto_accepted_to_the_report(transcript: Transcript) -> None:
    await transcript.http(
        "sse_chat/b_auto_accepted_report.txt", "POST", "/api/chat/stream", json_body=AUTO_ACCEPTED
    )
    transcript.check()


async def test_sse_chat_deep_thinking_then_edit_plan(transcript: Transcript) -> None:
    # (d) Multi-part content with reasoning, then "Edit plan" with feedback on that thread.
    thread = "pins-sse-edit"
    parts = [{"type": "text", "text": "Explain the "}, {"type": "text", "text": "tides."}]
    await transcript.http(
        "sse_chat/d_deep_thinking_interrupt.txt",
        "POST",
        "/api/chat/stream",
        json_body=chat_request(thread, parts, enable_deep_thinking=True),
    )
    await transcript.http(
        "sse_chat/d_edit_plan_follow_up.txt",
        "POST",
        "/api/chat/stream",
        json_body=chat_request(
            thread, "Focus on the history, please.", interrupt_feedback="edit_plan"
        ),
    )
    transcript.check()


# 2. The prose stream over SSE.

PROSE = (
    "the quick brown fox jumps over the lazy dog. it was very fast in order to escape.\n"
    "\n"
    "i think  it worked \u2013 a lot of people saw it"
)
PROSE_REQUESTS = {
    "continue": {"prompt": PROSE, "option": "continue"},
    "improve": {"prompt": PROSE, "option": "improve"},
    "shorter": {"prompt": PROSE, "option": "shorter"},
    "longer": {"prompt": PROSE, "option": "longer"},
    "fix": {"prompt": PROSE, "option": "fix"},
    "zap": {"prompt": PROSE, "option": "zap", "command": "Make it  sound like a pirate"},
}


@pytest.mark.parametrize("option", list(PROSE_REQUESTS))
async def test_sse_prose(transcript: Transcript, option: str) -> None:
    await transcript.http(
        f"sse_prose/{option}.txt",
        "POST",
        "/api/prose/generate",
        json_body=PROSE_REQUESTS[option],
    )
    transcript.check()


# 3. The same streams over the WebSocket.


async def test_ws_chat_plan_then_accepted_follow_up(transcript: Transcript) -> None:
    thread = "pins-ws-bees"
    ws = Socket(transcript, "ws_chat/a_first_question_then_c_accepted.txt")
    await ws.connect()
    await ws.send({"type": "chat.start", "request": chat_request(thread, QUESTION)})
    await ws.receive_until_end()
    follow_up = chat_request(thread, ACCEPTED, interrupt_feedback="accepted")
    await ws.send({"type": "chat.start", "request": follow_up})
    await ws.receive_until_end()
    await ws.close()
    transcript.check()


async def test_ws_chat_auto_accepted_to_the_report(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_chat/b_auto_accepted_report.txt")
    await ws.connect()
    await ws.send({"type": "chat.start", "request": AUTO_ACCEPTED})
    await ws.receive_until_end()
    await ws.close()
    transcript.check()


@pytest.mark.parametrize("option", list(PROSE_REQUESTS))
async def test_ws_prose(transcript: Transcript, option: str) -> None:
    ws = Socket(transcript, f"ws_prose/{option}.txt")
    await ws.connect()
    await ws.send({"type": "prose.start", "request": PROSE_REQUESTS[option]})
    await ws.receive_until_end()
    await ws.close()
    transcript.check()


# Other answers a client reads: resume, cancel, timeout, the session record, config, CORS.


async def test_sse_resume_of_a_finished_session(transcript: Transcript) -> None:
    pin = "http_other/resume_after_last_event_id.txt"
    done = await transcript.http(
        pin, "POST", "/api/prose/generate", json_body=PROSE_REQUESTS["longer"]
    )
    stream = f"/api/sessions/{done.headers['x-stream-session-id']}/stream"
    await transcript.http(pin, "GET", stream, headers={"last-event-id": "5"})
    await transcript.http(pin, "GET", stream, query="last_event_id=10")
    await transcript.http(pin, "GET", stream)
    transcript.check()


async def test_ws_resume_of_a_finished_session(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_other/resume_after_last_event_id.txt")
    await ws.connect()
    await ws.send({"type": "prose.start", "request": PROSE_REQUESTS["longer"]})
    session = (await ws.receive_until_end())[0]
    await ws.send({"type": "resume", "session_id": session["session_id"], "last_event_id": 5})
    await ws.receive_until_end()
    await ws.close()
    transcript.check()


async def test_sse_session_record_and_cancel_after_the_end(transcript: Transcript) -> None:
    pin = "http_other/session_record_and_409.txt"
    done = await transcript.http(
        pin, "POST", "/api/chat/stream", json_body=chat_request("pins-record", QUESTION)
    )
    session = f"/api/sessions/{done.headers['x-stream-session-id']}"
    await transcript.http(pin, "GET", session)
    await transcript.http(pin, "POST", f"{session}/cancel")
    transcript.check()


async def test_sse_cancel_of_a_running_stream(transcript: Transcript) -> None:
    pin = "http_other/cancel_running_stream.txt"
    with IDLE_DEMO:
        stream, sent = await transcript.send_http(
            "POST", "/api/chat/stream", json_body=chat_request("pins-cancel", QUESTION)
        )
        await stream.read_until(b"\n\n")
        session_id = stream.headers["x-stream-session-id"]
        transcript.add(pin, f"(stream {session_id} is open, before its first event: cancel it)\n")
        await transcript.http(pin, "POST", f"/api/sessions/{session_id}/cancel")
        await stream.read_all()
        transcript.record_http(pin, sent, stream)
    transcript.check()


async def test_ws_cancel_of_a_running_stream(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_other/cancel_running_stream.txt")
    with IDLE_DEMO:
        await ws.connect()
        await ws.send({"type": "chat.start", "request": chat_request("pins-ws-cancel", QUESTION)})
        await ws.receive()
        await ws.send({"type": "cancel"})
        await ws.receive_until_end()
        await ws.close()
    transcript.check()


async def test_sse_timeout(transcript: Transcript) -> None:
    with IDLE_DEMO, override_settings(STREAM_TIMEOUT_SECONDS=0.05):
        await transcript.http(
            "http_other/timeout.txt",
            "POST",
            "/api/prose/generate",
            json_body=PROSE_REQUESTS["fix"],
        )
    transcript.check()


async def test_ws_timeout(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_other/timeout.txt")
    with IDLE_DEMO, override_settings(STREAM_TIMEOUT_SECONDS=0.05):
        await ws.connect()
        await ws.send({"type": "chat.start", "request": chat_request("pins-timeout", QUESTION)})
        await ws.receive_until_end()
        await ws.close()
    transcript.check()


async def test_config_and_cors_preflight(transcript: Transcript) -> None:
    pin = "http_other/config_and_cors_preflight.txt"
    await transcript.http(pin, "GET", "/api/config")
    with TOKEN:  # /api/config answers without the token too
        await transcript.http(pin, "GET", "/api/config")
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, cache-control",
    }
    await transcript.http(pin, "OPTIONS", "/api/chat/stream", headers=preflight)
    await transcript.http(
        pin,
        "OPTIONS",
        "/api/chat/stream",
        headers={**preflight, "origin": "http://evil.example"},
    )
    transcript.check()


# 4. Every error a client can get over HTTP.


def nested(depth: int) -> bytes:
    """Return `mcp_settings` nested `depth` objects deep."""
    return b'{"mcp_settings": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


NUL_IN_PART = b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\u0000"}]}]}'
JSON_CT = {"content-type": "application/json"}
TEXT_CT = {"content-type": "text/plain;charset=UTF-8"}
SESSION = f"/api/sessions/{UNKNOWN_SESSION}"

# name: (settings or None, method, path, body, headers, query)
HTTP_ERRORS: dict[str, tuple[Any, str, str, bytes, dict[str, str], str]] = {
    # 400
    "400_invalid_json": (None, "POST", "/api/chat/stream", b"{not json", JSON_CT, ""),
    "400_not_utf8": (None, "POST", "/api/prose/generate", b"\xff", JSON_CT, ""),
    "400_utf16_bom": (None, "POST", "/api/chat/stream", b"\xff\xfe", JSON_CT, ""),
    "400_too_deep_json": (
        None,
        "POST",
        "/api/chat/stream",
        b"[" * 100_000 + b"]" * 100_000,
        JSON_CT,
        "",
    ),
    # 413
    "413_chat_body_too_large": (
        BIG,
        "POST",
        "/api/chat/stream",
        b'{"thread_id": "' + b"x" * 85 + b'"}',
        JSON_CT,
        "",
    ),
    "413_prose_body_too_large_for_django": (
        TOO_BIG_FOR_DJANGO,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "' + b"x" * 70 + b'", "option": "fix"}',
        JSON_CT,
        "",
    ),
    # 422: not an object, wrong types, prose options
    "422_body_is_a_list": (None, "POST", "/api/chat/stream", b"[1, 2]", JSON_CT, ""),
    "422_body_is_null": (None, "POST", "/api/prose/generate", b"null", JSON_CT, ""),
    "422_chat_wrong_types": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"messages": "hello", "auto_accepted_plan": "maybe", "max_step_num": "many"}',
        JSON_CT,
        "",
    ),
    "422_chat_out_of_range": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"max_step_num": 1000, "max_plan_iterations": -1}',
        JSON_CT,
        "",
    ),
    "422_chat_unknown_report_style": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"report_style": "poetry"}',
        JSON_CT,
        "",
    ),
    "422_chat_bad_message": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"messages": [{"role": "user"}, {"content": 5}]}',
        JSON_CT,
        "",
    ),
    "422_chat_thread_id_too_long": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"thread_id": "' + b"x" * 257 + b'"}',
        JSON_CT,
        "",
    ),
    "422_prose_unknown_option": (
        None,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "x", "option": "shout"}',
        JSON_CT,
        "",
    ),
    "422_prose_zap_without_command": (
        None,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "x", "option": "zap"}',
        JSON_CT,
        "",
    ),
    "422_prose_zap_blank_command": (
        None,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "x", "option": "zap", "command": "  "}',
        JSON_CT,
        "",
    ),
    "422_prose_empty_body": (None, "POST", "/api/prose/generate", b"", JSON_CT, ""),
    "422_chat_empty_body": (None, "POST", "/api/chat/stream", b"", JSON_CT, ""),
    # 415: only JSON is read (what another site's page can send without a preflight is not)
    "415_chat_text_plain": (None, "POST", "/api/chat/stream", b"{}", TEXT_CT, ""),
    "415_prose_form": (
        None,
        "POST",
        "/api/prose/generate",
        b"prompt=x&option=fix",
        {"content-type": "application/x-www-form-urlencoded"},
        "",
    ),
    "415_chat_multipart": (
        None,
        "POST",
        "/api/chat/stream",
        b'--b\r\ncontent-disposition: form-data; name="a"\r\n\r\n{}\r\n--b--\r\n',
        {"content-type": "multipart/form-data; boundary=b"},
        "",
    ),
    "415_chat_no_content_type": (None, "POST", "/api/chat/stream", b"{}", {}, ""),
    # 422: what the session's record could not store
    "422_nul_in_thread_id": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"thread_id": "a\\u0000b"}',
        JSON_CT,
        "",
    ),
    "422_nul_in_content_part": (None, "POST", "/api/chat/stream", NUL_IN_PART, JSON_CT, ""),
    "422_nul_in_prose_prompt": (
        None,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "\\u0000", "option": "fix"}',
        JSON_CT,
        "",
    ),
    "422_nul_in_mcp_settings_key": (
        MCP,
        "POST",
        "/api/chat/stream",
        b'{"mcp_settings": {"servers": {"a\\u0000": 1}}}',
        JSON_CT,
        "",
    ),
    "422_mcp_settings_too_deep": (MCP, "POST", "/api/chat/stream", nested(300), JSON_CT, ""),
    # 401
    "401_chat_without_token": (TOKEN, "POST", "/api/chat/stream", b"{}", JSON_CT, ""),
    "401_prose_wrong_token": (
        TOKEN,
        "POST",
        "/api/prose/generate",
        b'{"prompt": "x", "option": "fix"}',
        {**JSON_CT, "authorization": "Bearer nope"},
        "",
    ),
    "401_before_invalid_json": (TOKEN, "POST", "/api/chat/stream", b"{not json", JSON_CT, ""),
    "401_session_record": (TOKEN, "GET", SESSION, b"", {}, ""),
    "401_session_stream": (TOKEN, "GET", f"{SESSION}/stream", b"", {}, ""),
    "401_session_cancel": (TOKEN, "POST", f"{SESSION}/cancel", b"", {}, ""),
    # 403
    "403_mcp_settings_disabled": (
        None,
        "POST",
        "/api/chat/stream",
        b'{"mcp_settings": {"servers": {}}}',
        JSON_CT,
        "",
    ),
    # 404
    "404_unknown_session_record": (None, "GET", SESSION, b"", {}, ""),
    "404_unknown_session_stream": (None, "GET", f"{SESSION}/stream", b"", {}, ""),
    "404_unknown_session_cancel": (None, "POST", f"{SESSION}/cancel", b"", {}, ""),
    "404_unknown_api_path": (None, "DELETE", "/api/no/such/endpoint", b"", {}, ""),
    "404_malformed_session_id": (None, "GET", "/api/sessions/not-a-uuid", b"", {}, ""),
    "404_malformed_session_id_cancel": (
        None,
        "POST",
        "/api/sessions/not-a-uuid/cancel",
        b"",
        {},
        "",
    ),
    # 405
    "405_get_chat_stream": (None, "GET", "/api/chat/stream", b"", {}, ""),
    "405_put_prose_generate": (None, "PUT", "/api/prose/generate", b"", {}, ""),
    "405_post_config": (None, "POST", "/api/config", b"", {}, ""),
    "405_delete_healthz": (None, "DELETE", "/healthz", b"", {}, ""),
    "405_patch_session_record": (None, "PATCH", SESSION, b"", {}, ""),
    "405_post_session_stream": (None, "POST", f"{SESSION}/stream", b"", {}, ""),
    "405_get_session_cancel": (None, "GET", f"{SESSION}/cancel", b"", {}, ""),
    "405_post_openapi": (None, "POST", "/api/openapi.json", b"", {}, ""),
    # 422 Last-Event-ID
    "422_last_event_id_not_a_number": (
        None,
        "GET",
        f"{SESSION}/stream",
        b"",
        {"last-event-id": "x"},
        "",
    ),
    "422_last_event_id_negative": (
        None,
        "GET",
        f"{SESSION}/stream",
        b"",
        {"last-event-id": "-1"},
        "",
    ),
    "422_last_event_id_too_large_in_query": (
        None,
        "GET",
        f"{SESSION}/stream",
        b"",
        {},
        "last_event_id=1000000000000000000",
    ),
    # 429 / 503
    "503_at_the_stream_limit": (
        override_settings(STREAM_MAX_STREAMS=0),
        "POST",
        "/api/chat/stream",
        b"{}",
        JSON_CT,
        "",
    ),
    "429_too_many_from_this_client": (
        override_settings(STREAM_MAX_STREAMS_PER_CLIENT=0, STREAM_RETRY_AFTER_SECONDS=7),
        "POST",
        "/api/prose/generate",
        b'{"prompt": "x", "option": "fix"}',
        JSON_CT,
        "",
    ),
}


@pytest.mark.parametrize("name", list(HTTP_ERRORS))
async def test_http_error(transcript: Transcript, name: str) -> None:
    settings, method, path, body, headers, query = HTTP_ERRORS[name]
    with settings or nullcontext():
        exchange = await transcript.http(
            f"http_errors/{name}.txt", method, path, body=body, headers=headers, query=query
        )
    transcript.check()
    assert exchange.status == int(name[:3])  # the case's name says its status


async def test_http_410_resume_of_events_no_longer_kept(transcript: Transcript) -> None:
    pin = "http_errors/410_resume.txt"
    with override_settings(STREAM_LOG_MAX_EVENTS=5):
        done = await transcript.http(
            pin, "POST", "/api/prose/generate", json_body=PROSE_REQUESTS["longer"]
        )
        stream = f"/api/sessions/{done.headers['x-stream-session-id']}/stream"
        await transcript.http(pin, "GET", stream, headers={"last-event-id": "3"})
    with override_settings(STREAM_LOG_RETAIN=0, REDIS_URL=""):
        done = await transcript.http(
            pin, "POST", "/api/prose/generate", json_body=PROSE_REQUESTS["fix"]
        )
        stream = f"/api/sessions/{done.headers['x-stream-session-id']}/stream"
        await transcript.http(pin, "GET", stream)
    transcript.check()


# 4. Every error a client can get over the WebSocket.

# name: (settings or None, messages: text, or bytes sent as a binary frame)
WS_ERRORS: dict[str, tuple[Any, list[str | bytes]]] = {
    "not_json": (None, ["{not json"]),
    "binary_not_utf8": (None, [b"\xff"]),
    "too_deep_json": (None, ["[" * 100_000 + "]" * 100_000]),
    "not_an_object": (None, ["[1]", '"chat.start"']),
    "unknown_type": (None, ['{"type":"dance"}', "{}", '{"type":5}', '{"type":"dänce"}']),
    "request_not_an_object": (None, ['{"type":"chat.start","request":"x"}']),
    "message_too_large": (
        BIG,
        ['{"type":"chat.start","request":{"thread_id":"' + "x" * 80 + '"}}'],
    ),
    "chat_wrong_types": (
        None,
        ['{"type":"chat.start","request":{"messages":"hello","max_step_num":"many"}}'],
    ),
    "chat_nul_in_thread_id": (None, ['{"type":"chat.start","request":{"thread_id":"a\\u0000"}}']),
    "mcp_settings_disabled": (
        None,
        ['{"type":"chat.start","request":{"mcp_settings":{"servers":{}}}}'],
    ),
    "prose_unknown_option": (
        None,
        ['{"type":"prose.start","request":{"prompt":"x","option":"shout"}}'],
    ),
    "prose_zap_without_command": (
        None,
        ['{"type":"prose.start","request":{"prompt":"x","option":"zap"}}'],
    ),
    "prose_without_request": (None, ['{"type":"prose.start"}']),
    "resume_invalid_session_id": (
        None,
        [
            '{"type":"resume","session_id":"nope","last_event_id":0}',
            '{"type":"resume","last_event_id":0}',
        ],
    ),
    "resume_bad_last_event_id": (
        None,
        [
            f'{{"type":"resume","session_id":"{UNKNOWN_SESSION}","last_event_id":-1}}',
            f'{{"type":"resume","session_id":"{UNKNOWN_SESSION}","last_event_id":"5"}}',
        ],
    ),
    "resume_unknown_session": (
        None,
        [f'{{"type":"resume","session_id":"{UNKNOWN_SESSION}","last_event_id":0}}'],
    ),
    "cancel_with_nothing_running": (None, ['{"type":"cancel"}']),
    "503_at_the_stream_limit": (
        override_settings(STREAM_MAX_STREAMS=0),
        ['{"type":"chat.start","request":{}}'],
    ),
    "429_too_many_from_this_client": (
        override_settings(STREAM_MAX_STREAMS_PER_CLIENT=0),
        ['{"type":"prose.start","request":{"prompt":"x","option":"fix"}}'],
    ),
}


@pytest.mark.parametrize("name", list(WS_ERRORS))
async def test_ws_error(transcript: Transcript, name: str) -> None:
    settings, messages = WS_ERRORS[name]
    ws = Socket(transcript, f"ws_errors/{name}.txt")
    with settings or nullcontext():
        await ws.connect()
        for message in messages:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_text(message)
            await ws.receive()
        await ws.close()
    transcript.check()


async def test_ws_second_start_while_one_runs(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_errors/busy_while_a_stream_runs.txt")
    with IDLE_DEMO:
        await ws.connect()
        await ws.send({"type": "chat.start", "request": {"thread_id": "pins-busy"}})
        await ws.receive()
        await ws.send({"type": "chat.start", "request": {}})
        await ws.receive()
        await ws.send({"type": "prose.start", "request": PROSE_REQUESTS["fix"]})
        await ws.receive()
        await ws.send({"type": "resume", "session_id": UNKNOWN_SESSION, "last_event_id": 0})
        await ws.receive()
        await ws.send({"type": "cancel"})
        await ws.receive_until_end()
        await ws.close()
    transcript.check()


async def test_ws_resume_of_events_no_longer_kept(transcript: Transcript) -> None:
    ws = Socket(transcript, "ws_errors/resume_410.txt")
    await ws.connect()
    with override_settings(STREAM_LOG_MAX_EVENTS=5):
        await ws.send({"type": "prose.start", "request": PROSE_REQUESTS["longer"]})
        session = (await ws.receive_until_end())[0]
        await ws.send({"type": "resume", "session_id": session["session_id"], "last_event_id": 3})
        await ws.receive_until_end()  # its merged text, in one frame (no longer a 410)
    with override_settings(STREAM_LOG_RETAIN=0, REDIS_URL=""):
        await ws.send({"type": "prose.start", "request": PROSE_REQUESTS["fix"]})
        session = (await ws.receive_until_end())[0]
        await ws.send({"type": "resume", "session_id": session["session_id"], "last_event_id": 0})
        await ws.receive()
    await ws.close()
    transcript.check()


async def test_ws_refused_connections(transcript: Transcript) -> None:
    pin = "ws_errors/refused_connections.txt"
    with TOKEN:
        assert not await Socket(transcript, pin).connect()
        assert not await Socket(transcript, pin).connect("/ws/stream/?token=nope")
        accepted = Socket(transcript, pin)
        assert await accepted.connect("/ws/stream/?token=s3cret")
        await accepted.close()
    assert not await Socket(transcript, pin).connect(origin="http://evil.example")
    transcript.check()


def test_uuid_normalisation_is_by_first_appearance() -> None:
    normalise = Normaliser()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    text = f"{first} {second} {first} call_{'ab' * 12} {UNKNOWN_SESSION}"
    assert normalise(text) == f"<uuid-1> <uuid-2> <uuid-1> call_<hex-1> {UNKNOWN_SESSION}"
