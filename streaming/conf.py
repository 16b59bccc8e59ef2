"""The streaming app's settings: each one's name, type and default, written once.

Read lazily from Django's settings, so `override_settings` works. A setting that is absent,
or `None` (what `project/settings.py` sets when the environment does not), takes the
default written here. `checks.check_settings` refuses invalid values with ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast, overload

from django.conf import settings

T = TypeVar("T")
C = TypeVar("C")

OnDisconnect = Literal["cancel", "continue"]
ON_DISCONNECT_CHOICES: tuple[OnDisconnect, ...] = ("cancel", "continue")
MultitaskStrategy = Literal["interrupt", "reject", "enqueue"]
MULTITASK_CHOICES: tuple[MultitaskStrategy, ...] = ("interrupt", "reject", "enqueue")
AuthMode = Literal["open", "token", "users"]
AUTH_CHOICES: tuple[AuthMode, ...] = ("open", "token", "users")


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: its name in Django's settings, default, type and what it means."""

    name: str
    default: T
    cast: Callable[[Any], T]
    doc: str
    non_negative: bool = False  # a duration or a count that cannot be below 0
    choices: tuple[T, ...] = ()

    @staticmethod
    def one_of(name: str, choices: tuple[C, ...], doc: str) -> Setting[C]:
        """A setting that is one of `choices`, the first by default. Read strictly: a typo
        must never act as one of them (check streaming.E011 names it first)."""

        def strict(value: Any) -> C:
            if value not in choices:
                raise ValueError(f"{value!r} is not one of {', '.join(map(str, choices))}")
            return cast(C, value)

        return Setting(name, choices[0], strict, doc, choices=choices)

    def value(self) -> T:
        """Return the configured value (cast to the setting's type), else the default."""
        raw = getattr(settings, self.name, None)
        return self.default if raw is None else self.cast(raw)

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> Setting[T] | T:
        return self if instance is None else self.value()


class StreamingSettings:
    """The app's settings, as typed attributes named after them."""

    timeout_seconds = Setting(
        "STREAM_TIMEOUT_SECONDS", 1800.0, float, "Whole-stream deadline.", non_negative=True
    )
    idle_timeout_seconds = Setting(
        "STREAM_IDLE_TIMEOUT_SECONDS",
        120.0,
        float,
        "Longest a source may yield nothing before its stream ends `stalled` (0: no limit).",
        non_negative=True,
    )
    heartbeat_seconds = Setting(
        "STREAM_HEARTBEAT_SECONDS",
        15.0,
        float,
        "Idle gap before a `: ping` comment (and how long a Redis read waits for one).",
        non_negative=True,
    )
    row_heartbeat_seconds = Setting(
        "STREAM_ROW_HEARTBEAT_SECONDS",
        15.0,
        float,
        "How often a worker marks the rows of its live streams alive.",
        non_negative=True,
    )
    stale_after_seconds_setting = Setting(
        "STREAM_STALE_AFTER_SECONDS",
        0.0,
        float,
        "Age of a running row's heartbeat that counts as its worker lost (0: twice the row "
        "heartbeat).",
        non_negative=True,
    )
    on_disconnect = Setting.one_of(
        "STREAM_ON_DISCONNECT",
        ON_DISCONNECT_CHOICES,
        "What a client disconnect does to its run: `cancel` it or let it `continue`.",
    )
    multitask_strategy = Setting.one_of(
        "STREAM_MULTITASK_STRATEGY",
        MULTITASK_CHOICES,
        "What a chat request on a thread with a live run does: `interrupt` that run, `reject` "
        "the request (409), or `enqueue` it until that run ends.",
    )
    chat_source = Setting("STREAM_CHAT_SOURCE", "demo", str, "The chat stream's source.")
    prose_source = Setting("STREAM_PROSE_SOURCE", "demo", str, "The prose stream's source.")
    demo_delay_ms = Setting(
        "STREAM_DEMO_DELAY_MS",
        30,
        int,
        "The demo source's pause before each event.",
        non_negative=True,
    )
    auth = Setting.one_of(
        "STREAM_AUTH",
        AUTH_CHOICES,
        "Who may use the API: `open` (anyone), `token` (STREAM_API_TOKEN), `users` (Django's "
        "users: session cookie or personal API tokens).",
    )
    api_token = Setting("STREAM_API_TOKEN", "", str, "Bearer token the API requires (empty: none).")
    observer_link_seconds = Setting(
        "STREAM_OBSERVER_LINK_SECONDS",
        3600.0,
        float,
        "How long an observer link stays valid.",
        non_negative=True,
    )
    metrics_token = Setting(
        "STREAM_METRICS_TOKEN", "", str, "Bearer token `/metrics` requires (empty: none)."
    )
    max_body_bytes = Setting(
        "STREAM_MAX_BODY_BYTES",
        1024 * 1024,
        int,
        "Largest request body or WebSocket message.",
        non_negative=True,
    )
    max_streams = Setting(
        "STREAM_MAX_STREAMS", 1000, int, "Live streams one worker runs at most.", non_negative=True
    )
    max_streams_per_client = Setting(
        "STREAM_MAX_STREAMS_PER_CLIENT",
        20,
        int,
        "Live streams of one client address per worker.",
        non_negative=True,
    )
    retry_after_seconds = Setting(
        "STREAM_RETRY_AFTER_SECONDS",
        5,
        int,
        "The `Retry-After` of a refused stream.",
        non_negative=True,
    )
    enable_mcp = Setting(
        "STREAM_ENABLE_MCP", False, _bool, "Whether requests may carry `mcp_settings`."
    )
    log_max_events = Setting(
        "STREAM_LOG_MAX_EVENTS",
        10_000,
        int,
        "Events of one stream kept for readers and resumes.",
        non_negative=True,
    )
    log_max_bytes = Setting(
        "STREAM_LOG_MAX_BYTES",
        4 * 1024 * 1024,
        int,
        "Encoded size of the events one stream keeps.",
        non_negative=True,
    )
    send_timeout_seconds = Setting(
        "STREAM_SEND_TIMEOUT_SECONDS",
        30.0,
        float,
        "Longest a client may leave sent bytes unread before it is dropped.",
        non_negative=True,
    )
    log_ttl_seconds = Setting(
        "STREAM_LOG_TTL_SECONDS",
        3600.0,
        float,
        "How long a finished stream's events stay available for resumes.",
        non_negative=True,
    )
    log_retain = Setting(
        "STREAM_LOG_RETAIN",
        100,
        int,
        "Finished streams whose events one worker keeps in memory.",
        non_negative=True,
    )
    redis_url = Setting("REDIS_URL", "", str, "Redis for the channel layer and shared logs.")
    cancel_grace_seconds = Setting(
        "STREAM_CANCEL_GRACE_SECONDS",
        5.0,
        float,
        "Bound on a stopped run's cleanup, on shutdown, and on waiting for a first reader.",
        non_negative=True,
    )
    webhook_url = Setting(
        "STREAM_WEBHOOK_URL", "", str, "Where every run's final record is POSTed (empty: nowhere)."
    )
    webhook_allowed_hosts_setting = Setting(
        "STREAM_WEBHOOK_ALLOWED_HOSTS",
        "",
        str,
        "Hosts a request's own `webhook` URL may name, comma-separated (empty: none).",
    )
    webhook_secret = Setting(
        "STREAM_WEBHOOK_SECRET", "", str, "Signing secret of webhooks, `whsec_<base64>`."
    )
    webhook_attempts = Setting(
        "STREAM_WEBHOOK_ATTEMPTS", 5, int, "Attempts to deliver one webhook.", non_negative=True
    )
    webhook_timeout_seconds = Setting(
        "STREAM_WEBHOOK_TIMEOUT_SECONDS",
        10.0,
        float,
        "Bound on one webhook attempt (connect, send, answer).",
        non_negative=True,
    )
    otel_traces_exporter = Setting(
        "OTEL_TRACES_EXPORTER",
        "none",
        str,
        "`otlp` or `console`: trace requests and stream runs (requirements-otel.txt).",
    )
    # Real sources (openai, langgraph).
    openai_api_key = Setting("OPENAI_API_KEY", "", str, "Key of the OpenAI-compatible server.")
    openai_base_url = Setting("OPENAI_BASE_URL", "", str, "Its base URL (empty: OpenAI's).")
    llm_model = Setting("LLM_MODEL", "gpt-4o-mini", str, "Model name sent to the server.")
    openai_timeout_seconds = Setting(
        "OPENAI_TIMEOUT_SECONDS",
        60.0,
        float,
        "Connect timeout of a request to the model (its silence is STREAM_IDLE_TIMEOUT_SECONDS').",
        non_negative=True,
    )
    openai_max_retries = Setting(
        "OPENAI_MAX_RETRIES", 2, int, "Retries before the answer starts.", non_negative=True
    )
    openai_agent = Setting("STREAM_OPENAI_AGENT", "reporter", str, "Agent the openai source is.")
    chat_graph = Setting("STREAM_CHAT_GRAPH", "", str, "Dotted path of the chat graph.")
    prose_graph = Setting("STREAM_PROSE_GRAPH", "", str, "Dotted path of the prose graph.")
    langgraph_checkpointer = Setting(
        "LANGGRAPH_CHECKPOINTER", "memory", str, "`memory`, `none`, or a dotted path."
    )
    agent_recursion_limit = Setting(
        "AGENT_RECURSION_LIMIT",
        25,
        int,
        "Steps a langgraph run may take before it ends as an error (deer-flow's setting).",
        non_negative=True,
    )

    @property
    def access_mode(self) -> AuthMode:
        """STREAM_AUTH, where a set STREAM_API_TOKEN makes `open` act as `token`.

        A token once set is never silently ignored.
        """
        mode = self.auth
        return "token" if mode == "open" and self.api_token else mode

    @property
    def demo_delay_seconds(self) -> float:
        """The demo source's pause before each event, in seconds."""
        return self.demo_delay_ms / 1000

    @property
    def stale_after_seconds(self) -> float:
        """STREAM_STALE_AFTER_SECONDS, or twice the row heartbeat when it is 0 (unset)."""
        return self.stale_after_seconds_setting or 2 * self.row_heartbeat_seconds

    @property
    def webhook_allowed_hosts(self) -> frozenset[str]:
        """STREAM_WEBHOOK_ALLOWED_HOSTS as a set of lower-case host names."""
        hosts = self.webhook_allowed_hosts_setting.split(",")
        return frozenset(host.strip().lower() for host in hosts if host.strip())

    @classmethod
    def all(cls) -> list[Setting[Any]]:
        """Return every setting, in the order above."""
        return [value for value in vars(cls).values() if isinstance(value, Setting)]


conf = StreamingSettings()
