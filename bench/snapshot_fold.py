"""What the merged state costs per event: `python -m bench.snapshot_fold`.

Times `RunSnapshot.fold` alone, the event log's `append` with and without it, and the
dump the Redis mirror writes (once per STREAM_LOG_MAX_EVENTS / 2 events), per event.
Best of five runs, in nanoseconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from streaming.runs.eventlog import EventLog  # noqa: E402
from streaming.runs.snapshot import RunSnapshot  # noqa: E402
from streaming.sources.base import Event  # noqa: E402

N = 100_000


def head(message_id: str, agent: str) -> dict[str, Any]:
    return {"thread_id": "t", "agent": agent, "id": message_id, "role": "assistant"}


def content_events() -> list[Event]:
    """Return one report streamed in word-sized chunks."""
    return [
        Event("message_chunk", head("run-1", "reporter") | {"content": f"word{i % 97} "})
        for i in range(N)
    ]


def tool_call_events() -> list[Event]:
    """Return messages that each stream one tool call: the call, 8 argument pieces, the end."""
    events = []
    for m in range(N // 10):
        data = head(f"m{m}", "researcher")
        call = {"name": "web_search", "args": {}, "id": f"c{m}", "type": "tool_call"}
        first = {"name": "web_search", "args": "", "id": f"c{m}", "index": 0}
        events.append(
            Event("tool_calls", data | {"tool_calls": [call], "tool_call_chunks": [first]})
        )
        for args in ['{"query": "', *["tea "] * 6, '"}']:  # valid JSON once whole
            piece = {"name": "", "args": args, "id": "", "index": 0}
            events.append(Event("tool_call_chunks", data | {"tool_call_chunks": [piece]}))
        events.append(Event("message_chunk", data | {"finish_reason": "tool_calls"}))
    return events


def best(run: Callable[[], float]) -> float:
    return min(run() for _ in range(5))


def fold(events: list[Event]) -> float:
    snapshot = RunSnapshot()
    start = time.perf_counter()
    for event_id, event in enumerate(events, 1):
        snapshot.fold(event_id, event)
    return (time.perf_counter() - start) / len(events) * 1e9


class NoFold:
    """A snapshot that folds nothing: the log's cost before snapshots."""

    def fold(self, event_id: int, event: Event) -> None:
        """Fold nothing."""


def append(events: list[Event], *, folding: bool) -> float:
    log = EventLog(max_events=10_000, max_bytes=4 << 20)
    if not folding:
        log.snapshot = NoFold()  # type: ignore[assignment]
    start = time.perf_counter()
    for event in events:
        log.append(event)
    return (time.perf_counter() - start) / len(events) * 1e9


def main() -> None:
    for name, events in [("content chunk", content_events()), ("tool call", tool_call_events())]:
        print(f"{name}: fold {best(lambda e=events: fold(e)):.0f} ns/event")
        without = best(lambda e=events: append(e, folding=False))
        with_fold = best(lambda e=events: append(e, folding=True))
        print(f"{name}: EventLog.append {without:.0f} ns without the fold, {with_fold:.0f} ns with")
    snapshot = RunSnapshot()
    for event_id, event in enumerate(content_events()[:20_000] + tool_call_events()[:2_000], 1):
        snapshot.fold(event_id, event)
    start = time.perf_counter()
    state = snapshot.dump()
    took = time.perf_counter() - start
    print(
        f"dump of a {len(state)}-character state: {took * 1e3:.2f} ms, "
        f"{took / 5_000 * 1e9:.0f} ns/event at STREAM_LOG_MAX_EVENTS=10000"
    )


if __name__ == "__main__":
    main()
