"""The id after which a resume continues: `Last-Event-ID`, and the WebSocket's `last_event_id`."""

from __future__ import annotations

from streaming.api.errors import Refusal

# Far above any stream's event count, within Redis stream ids and int()'s digit limit.
MAX_EVENT_ID = 10**18 - 1
EVENT_ID_PATTERN = "^[0-9]+$"


def parse_event_id(value: object) -> int:
    """Return `value` (ASCII digits, or a JSON integer) as an event id, or refuse it (422).

    Both transports read it here, so they accept and refuse the same ids with the same text:
    0 to MAX_EVENT_ID, leading zeros allowed; no sign, no booleans, no other digits.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise Refusal.BAD_EVENT_ID.error()
    digits = text.lstrip("0") or "0"
    # ASCII only: str.isdigit() also accepts digits that int() refuses, such as "²".
    if not (text.isascii() and text.isdigit() and len(digits) <= len(str(MAX_EVENT_ID))):
        raise Refusal.BAD_EVENT_ID.error()
    return int(digits)
