"""Who opened a stream, read from the ASGI scope the same way by both transports."""

from __future__ import annotations

from streaming.api.clients import ClientInfo, header, query_value

SCOPE = {
    "client": ("203.0.113.9", 50123),
    "headers": [(b"user-agent", b"deer-flow/1.0"), (b"authorization", b"Bearer t")],
    "query_string": b"token=abc&x=1",
}


def test_client_info_from_a_scope() -> None:
    assert ClientInfo.from_scope(SCOPE) == ClientInfo("203.0.113.9", "deer-flow/1.0")
    assert ClientInfo.from_scope({}) == ClientInfo(None, "")


def test_headers_and_query_values() -> None:
    assert header(SCOPE, b"authorization") == "Bearer t"
    assert header(SCOPE, b"origin") == ""
    assert query_value(SCOPE, "token") == "abc"
    assert query_value(SCOPE, "missing") == ""
