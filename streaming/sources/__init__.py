"""Event sources, chosen by setting from a registry of dotted paths."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from streaming.sources.base import ChatSource, Event, ProseSource

CHAT_SOURCES = {
    "demo": "streaming.sources.demo.DemoWorkflowSource",
    "openai": "streaming.sources.openai.OpenAIChatSource",
    "langgraph": "streaming.sources.langgraph.LangGraphChatSource",
    # The benchmark's source (bench/): chosen only by this setting, never by a request.
    "synthetic": "streaming.sources.synthetic.SyntheticChatSource",
}
PROSE_SOURCES = {
    "demo": "streaming.sources.demo_prose.DemoProseSource",
    "openai": "streaming.sources.openai.OpenAIProseSource",
    "langgraph": "streaming.sources.langgraph.LangGraphProseSource",
}

__all__ = [
    "CHAT_SOURCES",
    "PROSE_SOURCES",
    "ChatSource",
    "Event",
    "ProseSource",
    "chat_source",
    "load_source",
    "prose_source",
]


@cache
def load_source(name: str, *, registry: tuple[tuple[str, str], ...]) -> Any:
    """Return the one instance of the source `name` (a registry name or a dotted path)."""
    path = dict(registry).get(name, name)
    try:
        source_class = import_string(path)
    except ImportError as exc:
        known = ", ".join(sorted(dict(registry)))
        raise ImproperlyConfigured(
            f"Stream source {name!r} cannot be loaded ({exc}). Use one of: {known}, "
            "or a dotted path to a class."
        ) from exc
    return source_class()


def chat_source(name: str) -> ChatSource:
    """Return the chat source configured as `name`."""
    source: ChatSource = load_source(name, registry=tuple(CHAT_SOURCES.items()))
    return source


def prose_source(name: str) -> ProseSource:
    """Return the prose source configured as `name`."""
    source: ProseSource = load_source(name, registry=tuple(PROSE_SOURCES.items()))
    return source
