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
DEFAULT_BUFFER_EVENTS = 10_000
DEFAULT_CANCEL_GRACE_SECONDS = 5.0

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
    def enable_mcp(self) -> bool:
        """Whether requests may carry `mcp_settings` (deer-flow's flag)."""
        return bool(getattr(settings, "STREAM_ENABLE_MCP", False))

    @property
    def buffer_events(self) -> int:
        """Events of one stream kept in memory for its readers."""
        return int(getattr(settings, "STREAM_BUFFER_EVENTS", DEFAULT_BUFFER_EVENTS))

    @property
    def cancel_grace_seconds(self) -> float:
        """How long a cancelled stream's cleanup may take (well inside daphne's 10 s)."""
        return float(getattr(settings, "STREAM_CANCEL_GRACE_SECONDS", DEFAULT_CANCEL_GRACE_SECONDS))


conf = StreamingSettings()
