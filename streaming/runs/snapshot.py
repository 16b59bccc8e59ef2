"""Resume from a snapshot: what a run's readers have merged so far, then the live events.

Every event the log takes is folded into a `RunSnapshot` (merged.py has deer-flow's
rules): per chat message its merged state and the id of the last event that changed it;
for prose, its text. A resume from an id whose events the log dropped is answered from it
(`SnapshotResume`): for each message changed after that id, in the order the messages
first appeared, the frames that rebuild it from nothing (the first with `"snapshot":
true`: start that message afresh where it stands), then the events after the snapshot.

Ids: the last compacted frame carries the id of the last event folded in, and the live
events carry on from there. An earlier compacted frame carries an id no higher than (a)
one below the last change of every message still to come and (b) two below the oldest
event kept; a reader cut off within the compacted frames resumes from an id whose events
stay dropped, so it gets a snapshot again, which rebuilds whatever it has yet to see.
Ids never go down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from streaming.runs.endings import EndReason
from streaming.runs.frames import Frame, encode_json
from streaming.runs.merged import Message, Text, ToolCall
from streaming.runs.readers import Comment, Followable, Output
from streaming.sources.base import Event

PROSE_SNAPSHOT = "snapshot"  # the event name of a prose stream's compacted frame

Group = list[tuple[str, Any]]  # one message's compacted events: (name, data)


class RunSnapshot:
    """The merged state of a run's events so far, updated as each is added."""

    __slots__ = ("_calls", "citations", "last_id", "messages", "prose")

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}  # in the order they first appeared
        self._calls: dict[str, Message] = {}  # tool call id: the message that holds it
        self.citations: tuple[int, Mapping[str, Any]] | None = None
        self.prose: tuple[int, Text] | None = None
        self.last_id = 0  # the last event folded in

    def fold(self, event_id: int, event: Event) -> None:
        """Merge event `event_id` into the state (an `error` ends a stream; it merges nothing)."""
        data = event.data
        if isinstance(data, str):
            if self.prose is None:
                self.prose = (event_id, Text(data))
            else:
                self.prose[1].add(data)
                self.prose = (event_id, self.prose[1])
        elif event.name == "tool_call_result":
            call_id = data.get("tool_call_id")
            holder = self._calls.get(call_id) if isinstance(call_id, str) else None
            if holder is None:
                return  # The client skips a result of a call it does not know.
            holder.merge(event.name, data)
            holder.touched = event_id
        elif event.name == "citations":
            self.citations = (event_id, data)
        elif event.name == "error" or not isinstance(key := data.get("id"), str):
            return
        else:
            message = self.messages.get(key)
            if message is None:
                message = self.messages[key] = Message(data)
            message.merge(event.name, data)
            message.touched = event_id
            if event.name == "tool_calls":
                for call in message.tool_calls or []:
                    self._calls[call.id] = message
        self.last_id = event_id

    def compacted(self, *, after: int, first_kept: int) -> list[Frame]:
        """Return the frames that bring a reader at `after` to this state (module docstring)."""
        groups: list[tuple[int, Group]] = [
            (m.touched, m.frames()) for m in self.messages.values() if m.touched > after
        ]
        if self.citations is not None and self.citations[0] > after:
            groups.append((self.citations[0], [("citations", self.citations[1])]))
        if self.prose is not None and self.prose[0] > after:
            groups.append((self.prose[0], [(PROSE_SNAPSHOT, str(self.prose[1]))]))
        frames: list[Frame] = []
        safe = after  # the id a reader may resume from after the frames sent so far
        ceiling = max(after, first_kept - 2)
        for index, (_, events) in enumerate(groups):
            later = [touched for touched, _ in groups[index + 1 :]]
            done = min(min(later) - 1, ceiling) if later else self.last_id
            for position, (name, data) in enumerate(events):
                event_id = done if position == len(events) - 1 else safe
                if isinstance(data, str):
                    frames.append(Frame(event_id, name, data, False))
                else:
                    frames.append(Frame(event_id, name, encode_json(data), True))
            safe = max(safe, done)
        return frames

    def dump(self) -> str:
        """Return the state as JSON (to keep it beside a run's log in Redis)."""
        messages = [
            [
                m.head,
                str(m.content),
                str(m.reasoning),
                None
                if m.tool_calls is None
                else [
                    [c.id, c.name, c.args, None if c.chunks is None else str(c.chunks), c.result]
                    for c in m.tool_calls
                ],
                m.finish,
                m.options,
                m.touched,
            ]
            for m in self.messages.values()
        ]
        prose = None if self.prose is None else [self.prose[0], str(self.prose[1])]
        citations = None if self.citations is None else list(self.citations)
        state = {"last_id": self.last_id, "messages": messages, "citations": citations}
        return encode_json(state | {"prose": prose})

    @classmethod
    def load(cls, text: str | bytes) -> RunSnapshot:
        """Return the state `dump()` wrote."""
        state = json.loads(text)
        snapshot = cls()
        snapshot.last_id = state["last_id"]
        for head, content, reasoning, calls, finish, options, touched in state["messages"]:
            message = snapshot.messages[head["id"]] = Message(head)
            message.content, message.reasoning = Text(content), Text(reasoning)
            message.finish, message.options, message.touched = finish, options, touched
            if calls is not None:
                message.tool_calls = []
                for call_id, name, args, chunks, result in calls:
                    call = ToolCall({"id": call_id, "name": name, "args": args})
                    call.chunks = None if chunks is None else Text(chunks)
                    call.result = result
                    message.tool_calls.append(call)
        if state["citations"] is not None:
            snapshot.citations = (state["citations"][0], state["citations"][1])
        if state["prose"] is not None:
            snapshot.prose = (state["prose"][0], Text(state["prose"][1]))
        return snapshot


class SnapshotResume:
    """A resume answered from a snapshot: its compacted frames, then the stream after it."""

    def __init__(
        self,
        stream: Followable,
        snapshot: RunSnapshot,
        *,
        after: int,
        first_kept: Callable[[], int],
    ) -> None:
        self.stream = stream
        self.snapshot = snapshot
        self.after = after
        self.first_kept = first_kept

    @property
    def outcome(self) -> EndReason | None:
        """How the stream ended, once it has."""
        return self.stream.outcome

    async def follow(self, *, after: int = 0) -> AsyncGenerator[Output, None]:
        """Yield the opening comment, the compacted frames, then the events after them.

        The frames are compacted as the reader takes its place after them, in one step (a
        live run's log drops nothing in between).
        """
        frames = self.snapshot.compacted(after=self.after, first_kept=self.first_kept())
        outputs = self.stream.follow(after=self.snapshot.last_id)
        try:
            opened = False
            async for output in outputs:
                yield output
                if not opened and isinstance(output, Comment):
                    opened = True
                    if frames:
                        yield frames
        finally:
            await outputs.aclose()
