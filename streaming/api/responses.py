"""Answers of the JSON endpoints: the views serialise through these, the document reads them.

Every field is always sent, so the document marks every field required.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import JsonResponse
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from streaming.models import EndReason, Kind, Status, StreamSession, Transport

# `datetime.isoformat()` (`+00:00`), as the record has always been sent: not pydantic's `Z`.
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Count = Annotated[int, Field(ge=0)]
Check = Literal["ok", "error"]


class Answer(BaseModel):
    """A JSON answer: serialised by `response()`, every field required in the document."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    def response(self, *, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
        """Return this answer as Django's JsonResponse, with `status`."""
        return JsonResponse(self.model_dump(mode="json"), status=status, headers=headers)


class Issue(Answer):
    """One reason a body was refused (pydantic's error, without the input)."""

    type: str = Field(description="What is wrong, as a code: pydantic's error types, and ours.")
    loc: list[str | int] = Field(description="Where: `body`, then the keys and indexes.")
    msg: str = Field(description="The reason, for people.")


class ErrorBody(Answer):
    """Every refusal of the API: FastAPI's shape, which deer-flow handles."""

    detail: str | list[Issue] = Field(
        description="Why the request was refused: a text, or one issue per reason for a body."
    )


class ThreadBusy(ErrorBody):
    """A refused request on a thread that has a live run, naming that run's session."""

    session_id: uuid.UUID = Field(description="The thread's live session.")


class SessionRecord(Answer):
    """One stream's record; fields may be added, these keep their names."""

    id: uuid.UUID = Field(description="The session's id (`X-Stream-Session-Id`).")
    kind: Kind = Field(description="Which stream it serves.")
    transport: Transport = Field(description="How its client was connected.")
    thread_id: str = Field(description="deer-flow's thread id; empty for prose.")
    status: Status = Field(
        description="Where the session is in its life: `queued` while it waits for its "
        "thread's live run to end (multitask_strategy `enqueue`), then `running`, then final."
    )
    end_reason: EndReason = Field(description="Why it ended; empty if it runs or completed.")
    started_at: Timestamp = Field(description="When the request was admitted.")
    ended_at: Timestamp | None = Field(description="When it ended; null while it runs.")
    duration_seconds: float | None = Field(description="How long it ran; null while it runs.")
    events_sent: Count = Field(
        description="Events handed to the client's connection. While the session runs, the "
        "count so far (the highest event id handed to a reader), read from the live run; "
        "once it ended, as recorded (for a client that left: how far it got)."
    )
    last_event_id: Count = Field(
        description="Id of the last event the stream produced (what a resume continues "
        "after). While the session runs, the id so far, read from the live run; with Redis "
        "(several workers) both counts are as the run last wrote them there (with each batch "
        "of events; `events_sent` within a second), the same from every worker."
    )
    source: str = Field(description="The event source that ran it.")

    @classmethod
    def of(cls, session: StreamSession) -> SessionRecord:
        """Return the public fields of a session's row."""
        return cls(
            id=session.id,
            kind=Kind(session.kind),
            transport=Transport(session.transport),
            thread_id=session.thread_id,
            status=Status(session.status),
            end_reason=EndReason(session.end_reason),
            started_at=session.started_at,
            ended_at=session.ended_at,
            duration_seconds=session.duration_seconds,
            events_sent=session.events_sent,
            last_event_id=session.last_event_id,
            source=session.source,
        )

    def live(self, *, last_event_id: int, events_sent: int) -> SessionRecord:
        """Return this record of a running session with its live counts."""
        return self.model_copy(update={"last_event_id": last_event_id, "events_sent": events_sent})


class ThreadSessions(Answer):
    """A thread's sessions, newest first: a client that reloads finds its live run here."""

    thread_id: str = Field(description="The thread.")
    sessions: list[SessionRecord] = Field(
        description="Newest first, at most `limit`; a running one with its live counts."
    )


class CancelAccepted(Answer):
    """The cancel was sent to the session's live run; its stream ends as cancelled."""

    id: uuid.UUID = Field(description="The session's id.")
    status: Literal["cancelling"] = "cancelling"


class ObserverLink(Answer):
    """A read-only link to one session's stream, for a plain `EventSource`."""

    url: str = Field(description="The stream's URL, the signed link in its query.")
    expires_at: Timestamp = Field(description="When the link stops working (410 after).")


class Rag(Answer):
    """deer-flow's retrieval settings: this server has no RAG provider."""

    provider: str | None = None


class Models(Answer):
    """The models the chat source offers, by deer-flow's kinds."""

    basic: list[str] = []
    reasoning: list[str] = []


class Config(Answer):
    """The server's configuration in deer-flow's shape."""

    rag: Rag = Field(default_factory=Rag)
    models: Models = Field(default_factory=Models)

    @classmethod
    def offered_by(cls, source: Any) -> Config:
        """Return the configuration with the models `source` offers (none without `models`)."""
        return cls(models=Models.model_validate(getattr(source, "models", {})))


class Ready(Answer):
    """Whether this worker takes new streams: not once its shutdown has begun."""

    status: Literal["ready", "shutting_down"] = Field(
        description="`ready` (200), or `shutting_down` (503) from the moment shutdown begins."
    )


class Health(Answer):
    """Whether the database and the channel layer answer, and this worker's load."""

    status: Check = Field(description="`ok` when both answer (200), else `error` (503).")
    database: Check
    channel_layer: Check
    live_streams: Count = Field(description="Streams this worker runs.")
    tasks: Count = Field(description="asyncio tasks in this worker.")
