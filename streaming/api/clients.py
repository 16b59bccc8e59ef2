"""Who opened a stream, as both transports read it from the ASGI scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A client's address (after the server applied trusted proxy headers), user agent,
    and user (`users` mode)."""

    address: str | None
    user_agent: str
    user_id: int | None = None

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any], *, user_id: int | None = None) -> ClientInfo:
        """Read the client of an HTTP request or a WebSocket from its ASGI scope."""
        client = scope.get("client") or (None, None)
        return cls(
            address=client[0] or None, user_agent=header(scope, b"user-agent"), user_id=user_id
        )

    @property
    def limit_key(self) -> str | None:
        """Return whose live streams a limit counts: the user's when there is one, else the
        address's."""
        return self.address if self.user_id is None else f"user:{self.user_id}"


def header(scope: Mapping[str, Any], name: bytes) -> str:
    """Return the first value of header `name` (lower case) in an ASGI scope, or ""."""
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return ""


def query_value(scope: Mapping[str, Any], name: str) -> str:
    """Return the first value of `name` in the scope's query string, or ""."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values: list[str] = query.get(name, [""])
    return values[0]
