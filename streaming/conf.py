"""The streaming app's settings, with their defaults in one place."""

from __future__ import annotations

from typing import Literal, cast

from django.conf import settings

DEFAULT_TIMEOUT_SECONDS = 1800.0
DEFAULT_HEARTBEAT_SECONDS = 15.0
DEFAULT_ON_DISCONNECT = "cancel"
DEFAULT_SOURCE = "demo"
DEFAULT_DEMO_DELAY_MS = 30
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_LOG_MAX_EVENTS = 10_000
DEFAULT_LOG_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_SEND_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_STREAMS = 1000
DEFAULT_MAX_STREAMS_PER_CLIENT = 20
DEFAULT_RETRY_AFTER_SECONDS = 5
DEFAULT_LOG_TTL_SECONDS = 3600.0
DEFAULT_LOG_RETAIN = 100
DEFAULT_CANCEL_GRACE_SECONDS = 5.0
DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_TIMEOUT_SECONDS = 60.0
DEFAULT_OPENAI_MAX_RETRIES = 2
DEFAULT_UPSTREAM_IDLE_SECONDS = 60.0
DEFAULT_OPENAI_AGENT = "reporter"

OnDisconnect = Literal["cancel", "continue"]


class StreamingSettings:
    """Read the app's settings lazily, so that override_settings works."""

    @property
    def timeout_seconds(self) -> float:
        """Whole-stream deadline."""
        return float(getattr(settings, "STREAM_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))

    @property
    def heartbeat_seconds(self) -> float:
        """Idle gap before a `: ping` comment, and the interval of row heartbeats."""
        return float(getattr(settings, "STREAM_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS))

    @property
    def on_disconnect(self) -> OnDisconnect:
        """What a client disconnect does to its run: `cancel` it or let it `continue`."""
        return cast(OnDisconnect, getattr(settings, "STREAM_ON_DISCONNECT", DEFAULT_ON_DISCONNECT))

    @property
    def chat_source(self) -> str:
        """Name or dotted path of the chat stream's source."""
        return str(getattr(settings, "STREAM_CHAT_SOURCE", DEFAULT_SOURCE))

    @property
    def prose_source(self) -> str:
        """Name or dotted path of the prose stream's source."""
        return str(getattr(settings, "STREAM_PROSE_SOURCE", DEFAULT_SOURCE))

    @property
    def demo_delay_seconds(self) -> float:
        """The demo source's pause before each event."""
        return int(getattr(settings, "STREAM_DEMO_DELAY_MS", DEFAULT_DEMO_DELAY_MS)) / 1000

    @property
    def api_token(self) -> str:
        """Bearer token the API requires; empty means no token is required."""
        return str(getattr(settings, "STREAM_API_TOKEN", ""))

    @property
    def max_body_bytes(self) -> int:
        """Largest request body a stream endpoint accepts."""
        return int(getattr(settings, "STREAM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    @property
    def max_streams(self) -> int:
        """Live streams one worker runs at most (503 beyond)."""
        return int(getattr(settings, "STREAM_MAX_STREAMS", DEFAULT_MAX_STREAMS))

    @property
    def max_streams_per_client(self) -> int:
        """Live streams one client address may have on one worker (429 beyond)."""
        return int(
            getattr(settings, "STREAM_MAX_STREAMS_PER_CLIENT", DEFAULT_MAX_STREAMS_PER_CLIENT)
        )

    @property
    def retry_after_seconds(self) -> int:
        """The `Retry-After` of a refused stream."""
        return int(getattr(settings, "STREAM_RETRY_AFTER_SECONDS", DEFAULT_RETRY_AFTER_SECONDS))

    @property
    def enable_mcp(self) -> bool:
        """Whether requests may carry `mcp_settings` (deer-flow's flag)."""
        return bool(getattr(settings, "STREAM_ENABLE_MCP", False))

    @property
    def log_max_events(self) -> int:
        """Events of one stream kept for readers and resumes (the oldest are dropped)."""
        return int(getattr(settings, "STREAM_LOG_MAX_EVENTS", DEFAULT_LOG_MAX_EVENTS))

    @property
    def send_timeout_seconds(self) -> float:
        """Longest a client may leave sent bytes unread before its connection is dropped."""
        return float(getattr(settings, "STREAM_SEND_TIMEOUT_SECONDS", DEFAULT_SEND_TIMEOUT_SECONDS))

    @property
    def log_max_bytes(self) -> int:
        """Encoded size of the events one stream keeps (a client that stops reading holds
        at most this much; the oldest read events are dropped beyond it)."""
        return int(getattr(settings, "STREAM_LOG_MAX_BYTES", DEFAULT_LOG_MAX_BYTES))

    @property
    def log_ttl_seconds(self) -> float:
        """How long a finished stream's events stay available for resumes."""
        return float(getattr(settings, "STREAM_LOG_TTL_SECONDS", DEFAULT_LOG_TTL_SECONDS))

    @property
    def log_retain(self) -> int:
        """Finished streams whose events one worker keeps in memory for resumes."""
        return int(getattr(settings, "STREAM_LOG_RETAIN", DEFAULT_LOG_RETAIN))

    @property
    def redis_url(self) -> str:
        """Redis for the channel layer and the shared event logs; empty means none."""
        return str(getattr(settings, "REDIS_URL", ""))

    @property
    def cancel_grace_seconds(self) -> float:
        """How long a cancelled stream's cleanup may take (well inside daphne's 10 s)."""
        return float(getattr(settings, "STREAM_CANCEL_GRACE_SECONDS", DEFAULT_CANCEL_GRACE_SECONDS))

    # Real sources (openai, langgraph).

    @property
    def openai_api_key(self) -> str:
        """API key of the OpenAI-compatible server."""
        return str(getattr(settings, "OPENAI_API_KEY", ""))

    @property
    def openai_base_url(self) -> str:
        """Base URL of the OpenAI-compatible server; empty means OpenAI's."""
        return str(getattr(settings, "OPENAI_BASE_URL", ""))

    @property
    def llm_model(self) -> str:
        """Model name sent to the OpenAI-compatible server."""
        return str(getattr(settings, "LLM_MODEL", DEFAULT_LLM_MODEL))

    @property
    def openai_timeout_seconds(self) -> float:
        """Timeout of one request to the model (connect and each read)."""
        return float(getattr(settings, "OPENAI_TIMEOUT_SECONDS", DEFAULT_OPENAI_TIMEOUT_SECONDS))

    @property
    def openai_max_retries(self) -> int:
        """Retries of a failed request before the stream's first chunk."""
        return int(getattr(settings, "OPENAI_MAX_RETRIES", DEFAULT_OPENAI_MAX_RETRIES))

    @property
    def upstream_idle_seconds(self) -> float:
        """Longest silence of an upstream stream before it counts as stalled."""
        return float(
            getattr(settings, "STREAM_UPSTREAM_IDLE_SECONDS", DEFAULT_UPSTREAM_IDLE_SECONDS)
        )

    @property
    def openai_agent(self) -> str:
        """deer-flow agent name the openai chat source speaks as."""
        return str(getattr(settings, "STREAM_OPENAI_AGENT", DEFAULT_OPENAI_AGENT))

    @property
    def chat_graph(self) -> str:
        """Dotted path of the compiled LangGraph graph for chat."""
        return str(getattr(settings, "STREAM_CHAT_GRAPH", ""))

    @property
    def prose_graph(self) -> str:
        """Dotted path of the compiled LangGraph graph for prose."""
        return str(getattr(settings, "STREAM_PROSE_GRAPH", ""))

    @property
    def langgraph_checkpointer(self) -> str:
        """`memory`, `none`, or a dotted path to a checkpointer factory."""
        return str(getattr(settings, "LANGGRAPH_CHECKPOINTER", "memory"))


conf = StreamingSettings()
