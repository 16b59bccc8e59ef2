"""System checks: `manage.py check` says what a selected source is missing."""

from __future__ import annotations

import sys

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from streaming.sources import CHAT_SOURCES, load_source

LANGGRAPH = {
    "STREAM_CHAT_SOURCE": "langgraph",
    "STREAM_PROSE_SOURCE": "langgraph",
    "STREAM_CHAT_GRAPH": "tests.support.fake_graphs.build_chat_graph",
    "STREAM_PROSE_GRAPH": "tests.support.fake_graphs.PROSE_GRAPH",
    "LANGGRAPH_CHECKPOINTER": "memory",
}


@pytest.fixture
def without_langgraph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make LangGraph impossible to import, as if it were not installed."""
    for name in [name for name in sys.modules if name.split(".")[0] == "langgraph"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "langgraph", None)
    monkeypatch.delitem(sys.modules, "streaming.sources.langgraph", raising=False)


def streaming_errors() -> list[str]:
    ids = [message.id or "" for message in run_checks()]
    return [check_id for check_id in ids if check_id.startswith("streaming.")]


def test_the_default_demo_sources_need_nothing() -> None:
    assert streaming_errors() == []


@pytest.mark.parametrize("setting", ["STREAM_CHAT_SOURCE", "STREAM_PROSE_SOURCE"])
def test_openai_without_an_api_key(setting: str) -> None:
    with override_settings(**{setting: "openai"}, OPENAI_API_KEY=""):
        assert streaming_errors() == ["streaming.E001"]
    with override_settings(**{setting: "openai"}, OPENAI_API_KEY="local"):
        assert streaming_errors() == []


def test_manage_py_check_fails_with_the_id_and_the_hint() -> None:
    with (
        override_settings(STREAM_CHAT_SOURCE="openai", OPENAI_API_KEY=""),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check")

    assert "streaming.E001" in str(raised.value)
    assert "OPENAI_API_KEY" in str(raised.value)
    assert "Ollama" in str(raised.value)


def test_langgraph_fully_configured() -> None:
    with override_settings(**LANGGRAPH):
        assert streaming_errors() == []


@pytest.mark.usefixtures("without_langgraph")
def test_langgraph_not_installed() -> None:
    with override_settings(**LANGGRAPH):
        [error] = [m for m in run_checks() if m.id == "streaming.E002"]
    assert "langgraph" in error.msg
    assert error.hint is not None
    assert "requirements-langgraph.txt" in error.hint


@pytest.mark.usefixtures("without_langgraph")
def test_without_langgraph_the_source_fails_to_load_with_a_clear_message() -> None:
    with pytest.raises(ImproperlyConfigured, match="langgraph"):
        load_source.__wrapped__("langgraph", registry=tuple(CHAT_SOURCES.items()))


def test_langgraph_without_graphs() -> None:
    with override_settings(**LANGGRAPH | {"STREAM_CHAT_GRAPH": "", "STREAM_PROSE_GRAPH": ""}):
        assert streaming_errors() == ["streaming.E003", "streaming.E004"]


@pytest.mark.parametrize(
    "setting", ["STREAM_CHAT_GRAPH", "STREAM_PROSE_GRAPH", "LANGGRAPH_CHECKPOINTER"]
)
def test_langgraph_path_whose_module_is_missing(setting: str) -> None:
    with override_settings(**LANGGRAPH | {setting: "missing_project.graph.builder.build_graph"}):
        assert streaming_errors() == ["streaming.E005"]
