"""System checks: `manage.py check` says what a selected source is missing."""

from __future__ import annotations

import sys
from pathlib import Path

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


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"STREAM_ON_DISCONNECT": "contine"}, ["streaming.E011"]),
        ({"STREAM_AUTH": "user"}, ["streaming.E011"]),
        ({"STREAM_MULTITASK_STRATEGY": "queue"}, ["streaming.E011"]),
        ({"STREAM_MULTITASK_STRATEGY": "enqueue"}, []),
        ({"STREAM_AUTH": "token"}, ["streaming.E014"]),
        ({"STREAM_AUTH": "token", "STREAM_API_TOKEN": "s3cret"}, []),
        ({"STREAM_AUTH": "users"}, []),
        ({"STREAM_TIMEOUT_SECONDS": -1}, ["streaming.E012"]),
        ({"STREAM_SEND_TIMEOUT_SECONDS": -0.5, "STREAM_LOG_RETAIN": -1}, ["streaming.E012"] * 2),
        ({"STREAM_MAX_STREAMS": "many"}, ["streaming.E010"]),
        (
            {"STREAM_ROW_HEARTBEAT_SECONDS": 30, "STREAM_STALE_AFTER_SECONDS": 30},
            ["streaming.E013"],
        ),
        ({"STREAM_ROW_HEARTBEAT_SECONDS": 30, "STREAM_STALE_AFTER_SECONDS": 31}, []),
        (
            {
                "STREAM_ON_DISCONNECT": "continue",
                "STREAM_TIMEOUT_SECONDS": 0,
                "STREAM_IDLE_TIMEOUT_SECONDS": 0,
            },
            [],
        ),
        ({"STREAM_IDLE_TIMEOUT_SECONDS": -1}, ["streaming.E012"]),
        ({"STREAM_IDLE_TIMEOUT_SECONDS": "soon"}, ["streaming.E010"]),
        # A watchdog the deadline always beats; the setting it replaced, still set.
        ({"STREAM_IDLE_TIMEOUT_SECONDS": 900, "STREAM_TIMEOUT_SECONDS": 900}, ["streaming.W001"]),
        ({"STREAM_IDLE_TIMEOUT_SECONDS": 899, "STREAM_TIMEOUT_SECONDS": 900}, []),
        ({"STREAM_UPSTREAM_IDLE_SECONDS": "60"}, ["streaming.W002"]),
    ],
)
def test_invalid_settings_are_refused_with_ids(
    overrides: dict[str, object], expected: list[str]
) -> None:
    with override_settings(**overrides):
        assert streaming_errors() == expected


def test_an_unknown_on_disconnect_says_what_is_allowed() -> None:
    with override_settings(STREAM_ON_DISCONNECT="contine"):
        [message] = [m for m in run_checks() if m.id == "streaming.E011"]
    assert message.msg == "STREAM_ON_DISCONNECT is 'contine'."
    assert message.hint == "Use one of: cancel, continue."


def test_an_unknown_multitask_strategy_says_what_is_allowed() -> None:
    with override_settings(STREAM_MULTITASK_STRATEGY="Interrupt"):
        [message] = [m for m in run_checks() if m.id == "streaming.E011"]
    assert message.msg == "STREAM_MULTITASK_STRATEGY is 'Interrupt'."
    assert message.hint == "Use one of: interrupt, reject, enqueue."


def test_the_server_refuses_to_start_with_an_invalid_setting() -> None:
    with override_settings(STREAM_STALE_AFTER_SECONDS=5), pytest.raises(SystemCheckError) as info:
        call_command("check")
    assert "streaming.E013" in str(info.value)
    assert "STREAM_STALE_AFTER_SECONDS (5) is not above STREAM_ROW_HEARTBEAT_SECONDS (15)" in str(
        info.value
    )


def test_project_settings_do_not_import_the_app() -> None:
    settings_source = (Path(__file__).resolve().parents[1] / "project" / "settings.py").read_text()
    assert "import streaming" not in settings_source
    assert "from streaming" not in settings_source


WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+ZwyFfrV1hI="


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"STREAM_WEBHOOK_URL": "https://hooks.example/x"}, ["streaming.E031"]),
        ({"STREAM_WEBHOOK_ALLOWED_HOSTS": "hooks.example"}, ["streaming.E031"]),
        ({"STREAM_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, ["streaming.E030"]),
        ({"STREAM_WEBHOOK_SECRET": "not-the-spec-form"}, ["streaming.E030"]),
        (
            {
                "STREAM_WEBHOOK_URL": "ftp://hooks.example/x",
                "STREAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            ["streaming.E032"],
        ),
        (
            {
                "STREAM_WEBHOOK_URL": "https://hooks.example/x",
                "STREAM_WEBHOOK_ALLOWED_HOSTS": "hooks.example, 127.0.0.1",
                "STREAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            [],
        ),
        ({}, []),
    ],
)
def test_webhooks_need_a_well_formed_secret_and_an_http_url(
    overrides: dict[str, str], expected: list[str]
) -> None:
    with override_settings(**overrides):
        assert streaming_errors() == expected
