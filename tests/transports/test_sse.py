"""SSE frames, byte for byte, and text that survives a standard parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.runs.frames import to_frame
from streaming.sources.base import Event
from streaming.transports.sse import encode_comment, encode_frames, stream_headers
from tests.support.sseparse import parse


def encode_event(event_id: int, event: Event) -> bytes:
    """Encode one event as the log and the SSE encoder do."""
    return encode_frames([to_frame(event_id, event)])


@pytest.mark.parametrize(
    ("event_id", "event", "expected"),
    [
        (
            1,
            Event("message_chunk", {"id": "run-1", "content": 'héllo "x"\n'}),
            b"id: 1\nevent: message_chunk\n"
            b'data: {"id":"run-1","content":"h\xc3\xa9llo \\"x\\"\\n"}\n\n',
        ),
        (7, Event("", "plain text"), b"id: 7\ndata: plain text\n\n"),
        (8, Event("", "two\nlines"), b"id: 8\ndata: two\ndata: lines\n\n"),
        (9, Event("", "ends with break\n"), b"id: 9\ndata: ends with break\ndata: \n\n"),
        (10, Event("", ""), b"id: 10\ndata: \n\n"),
        (11, Event("", " leading space"), b"id: 11\ndata:  leading space\n\n"),
        (12, Event("bad\nname", {"a": 1}), b'id: 12\nevent: badname\ndata: {"a":1}\n\n'),
        (13, Event("", "crlf\r\nand\rcr"), b"id: 13\ndata: crlf\ndata: and\ndata: cr\n\n"),
    ],
)
def test_encode_event(event_id: int, event: Event, expected: bytes) -> None:
    assert encode_event(event_id, event) == expected


def test_encode_events_joins_frames() -> None:
    frames = [to_frame(1, Event("", "a")), to_frame(2, Event("", "b"))]
    assert encode_frames(frames) == b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n"


def test_comments() -> None:
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"


def test_headers() -> None:
    assert stream_headers("abc") == {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "X-Stream-Session-Id": "abc",
    }


@given(st.text().filter(lambda s: "\r" not in s))
def test_any_text_round_trips_through_a_standard_parser(text: str) -> None:
    frames = parse(encode_event(1, Event("", text)))
    assert len(frames) == 1
    assert frames[0].data == text


@given(st.text())
def test_line_breaks_are_normalised_to_lf(text: str) -> None:
    frames = parse(encode_event(3, Event("", text)))
    assert frames[0].data == text.replace("\r\n", "\n").replace("\r", "\n")


@given(st.dictionaries(st.text(), st.text() | st.integers() | st.none(), max_size=5))
def test_json_data_is_one_line(data: dict[str, object]) -> None:
    frame = encode_event(5, Event("message_chunk", data))
    assert frame.count(b"\n") == 4  # id, event, data, blank line
    assert parse(frame)[0].json() == data


def test_lone_surrogates_become_replacement_characters() -> None:
    frame = encode_event(1, Event("", "a\ud800b"))
    assert frame == "id: 1\ndata: a\ufffdb\n\n".encode()
    assert parse(encode_event(2, Event("x", {"c": "\udfff"})))[0].json() == {"c": "\ufffd"}
