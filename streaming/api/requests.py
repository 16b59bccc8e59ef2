"""Request bodies of the stream endpoints, mirroring deer-flow's pydantic models."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from streaming.api.webhooks import http_url_problem
from streaming.conf import MultitaskStrategy, OnDisconnect

DEFAULT_THREAD_ID = "__default__"

MAX_TEXT = 100_000
MAX_ITEMS = 200
ShortText = Annotated[str, StringConstraints(max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


def _http_url(url: str) -> str:
    if problem := http_url_problem(url):
        raise ValueError(f"Not a webhook URL: {problem}.")
    return url


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_http_url),
    Field(
        description="An http(s) URL that gets the session's final record, signed, when its "
        "run ends; its host must be in STREAM_WEBHOOK_ALLOWED_HOSTS (else 422)."
    ),
]


class Schema(BaseModel):
    """Ignore unknown fields, as deer-flow does."""

    model_config = ConfigDict(extra="ignore")


class RunPolicy(Schema):
    """The run policy a stream request may carry (beyond deer-flow's fields)."""

    on_disconnect: OnDisconnect | None = Field(
        None,
        description="What the client going away does to the run: `cancel` it, or let it "
        "`continue` (it can be resumed). Absent or null: STREAM_ON_DISCONNECT.",
    )


class ReportStyle(StrEnum):
    """Report styles of deer-flow."""

    ACADEMIC = "academic"
    POPULAR_SCIENCE = "popular_science"
    NEWS = "news"
    SOCIAL_MEDIA = "social_media"
    STRATEGIC_INVESTMENT = "strategic_investment"


class ContentItem(Schema):
    """One part of a multi-part message."""

    type: ShortText
    text: LongText | None = None
    image_url: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = None


class ChatMessage(Schema):
    """One message of the conversation."""

    role: ShortText
    content: LongText | Annotated[list[ContentItem], Field(max_length=50)]

    def text(self) -> str:
        """Return the message's text, parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(item.text or "" for item in self.content)


class Resource(Schema):
    """A RAG resource the research may use."""

    uri: Annotated[str, StringConstraints(max_length=2048)]
    title: ShortText = ""
    description: Annotated[str, StringConstraints(max_length=4096)] | None = ""


class ChatRequest(RunPolicy):
    """Body of `POST /api/chat/stream` (deer-flow's ChatRequest)."""

    messages: Annotated[list[ChatMessage], Field(max_length=MAX_ITEMS)] = []
    resources: Annotated[list[Resource], Field(max_length=50)] = []
    debug: bool = False
    thread_id: ShortText = DEFAULT_THREAD_ID
    locale: ShortText = "en-US"
    max_plan_iterations: Annotated[int, Field(ge=0, le=10)] = 1
    max_step_num: Annotated[int, Field(ge=1, le=20)] = 3
    max_search_results: Annotated[int, Field(ge=1, le=50)] = 3
    auto_accepted_plan: bool = False
    interrupt_feedback: ShortText | None = None
    mcp_settings: dict[str, Any] | None = Field(
        None,
        description="deer-flow's MCP settings (refused unless ENABLE_MCP_SERVER_CONFIGURATION): "
        "no U+0000 in any key or string, nested at most 64 levels deep.",
    )
    enable_background_investigation: bool = True
    enable_web_search: bool = True
    report_style: ReportStyle = ReportStyle.ACADEMIC
    enable_deep_thinking: bool = False
    enable_clarification: bool | None = None
    max_clarification_rounds: Annotated[int, Field(ge=0, le=20)] | None = None
    interrupt_before_tools: Annotated[list[ShortText], Field(max_length=50)] = []
    multitask_strategy: MultitaskStrategy | None = Field(
        None,
        description="What this request does when its thread has a live run: `interrupt` it "
        "(it ends cancelled, reason `superseded`), `reject` this request (409), or `enqueue` "
        "this one until it ends (its record says `queued`). Absent or null: "
        "STREAM_MULTITASK_STRATEGY.",
    )
    webhook: WebhookUrl | None = None

    # The body's fields that deer-flow does not define, set aside for a source that reads
    # parameters of its own (the benchmark's synthetic source). Private: never stored in
    # the session's request_params, never sent back.
    _extra_fields: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_extra_fields(
        cls, data: Any, handler: ModelWrapValidatorHandler[ChatRequest]
    ) -> ChatRequest:
        request = handler(data)
        if isinstance(data, dict):
            known = cls.model_fields
            request._extra_fields = {k: v for k, v in data.items() if k not in known}
        return request

    @property
    def extra_fields(self) -> Mapping[str, Any]:
        """Return the body's fields that are not deer-flow's (ignored by every other source)."""
        return self._extra_fields

    def resolved_thread_id(self) -> str:
        """Return the thread id, a new uuid4 for deer-flow's `__default__`."""
        if self.thread_id == DEFAULT_THREAD_ID or not self.thread_id:
            return str(uuid.uuid4())
        return self.thread_id

    def last_user_text(self) -> str:
        """Return the text of the latest user message, or an empty string."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""


ProseOption = Literal["continue", "improve", "shorter", "longer", "fix", "zap"]


class ProseRequest(RunPolicy):
    """Body of `POST /api/prose/generate` (deer-flow's GenerateProseRequest).

    A prose request has no thread, so no `multitask_strategy`: each one is a run of its own.
    """

    prompt: LongText
    option: ProseOption
    command: LongText | None = ""
    webhook: WebhookUrl | None = None

    @model_validator(mode="after")
    def _zap_needs_command(self) -> ProseRequest:
        if self.option == "zap" and not (self.command or "").strip():
            raise ValueError("option 'zap' needs a non-empty 'command'")
        return self
