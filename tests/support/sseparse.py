"""A standard SSE parser (the WHATWG algorithm) and deer-flow's client rules, for assertions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    """One dispatched event as a standard client sees it."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        """Return the data parsed as JSON."""
        return json.loads(self.data)


def parse(body: bytes) -> list[Frame]:
    """Parse a stream as the HTML standard's EventSource does (comments dropped)."""
    text = body.decode()
    frames: list[Frame] = []
    event, last_id = "", None
    data: list[str] = []
    has_data = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if has_data:
                frames.append(Frame(last_id, event or "message", "\n".join(data)))
            event, data, has_data = "", [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
            has_data = True
        elif name == "id":
            last_id = value
    return frames


def deerflow_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Parse as deer-flow's web client does: split on a blank line, read `key: value`."""
    events = []
    for block in body.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            key, sep, value = line.partition(": ")
            if sep and key in ("event", "data"):
                fields[key] = value
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events
