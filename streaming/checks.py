"""System checks: the settings are valid, and a selected source has what it needs."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from streaming.api.webhooks import decode_secret, http_url_problem
from streaming.conf import Setting, StreamingSettings, conf

LANGGRAPH_PACKAGES = ("langgraph", "langchain_core")
CHECKPOINTERS = ("memory", "none")


def check_sources(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report what the selected chat and prose sources are missing."""
    selected = {conf.chat_source, conf.prose_source}
    errors: list[CheckMessage] = []
    if "openai" in selected and not conf.openai_api_key:
        errors.append(
            Error(
                "The openai source is selected but OPENAI_API_KEY is not set.",
                hint="Set OPENAI_API_KEY to the model server's key. Servers that need none "
                "(Ollama, vLLM, LM Studio, llama.cpp) accept any value, e.g. OPENAI_API_KEY=local.",
                id="streaming.E001",
            )
        )
    if "langgraph" in selected:
        errors += _langgraph_errors()
    return errors


def _langgraph_errors() -> list[CheckMessage]:
    missing = [name for name in LANGGRAPH_PACKAGES if not _importable(name)]
    if missing:
        return [
            Error(
                f"The langgraph source is selected but {', '.join(missing)} is not installed.",
                hint="Install the optional dependencies: pip install -r requirements-langgraph.txt",
                id="streaming.E002",
            )
        ]
    errors: list[CheckMessage] = []
    graphs = [
        ("STREAM_CHAT_GRAPH", conf.chat_graph, conf.chat_source, "streaming.E003"),
        ("STREAM_PROSE_GRAPH", conf.prose_graph, conf.prose_source, "streaming.E004"),
    ]
    for setting, path, source, check_id in graphs:
        if source == "langgraph" and not path:
            errors.append(
                Error(
                    f"The langgraph source is selected but {setting} is not set.",
                    hint=f"Set {setting} to the dotted path of a compiled graph or of a "
                    "function that builds one (deer-flow: src.graph.builder.build_graph, "
                    "src.prose.graph.builder.build_graph).",
                    id=check_id,
                )
            )
        elif source == "langgraph" and not _module_found(path):
            errors.append(_not_found(setting, path))
    checkpointer = conf.langgraph_checkpointer
    if checkpointer not in CHECKPOINTERS and not _module_found(checkpointer):
        errors.append(_not_found("LANGGRAPH_CHECKPOINTER", checkpointer))
    return errors


def _not_found(setting: str, path: str) -> Error:
    return Error(
        f"{setting} names {path!r}, whose module cannot be found.",
        hint="Check the dotted path, and that the project it lives in (deer-flow's checkout, "
        "for instance) is on PYTHONPATH with its dependencies installed.",
        id="streaming.E005",
    )


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _module_found(dotted_path: str) -> bool:
    """Return whether the module part of `dotted_path` exists (without importing it)."""
    module = dotted_path.rpartition(".")[0]
    try:
        return bool(module) and importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse setting values the app cannot run with."""
    errors: list[CheckMessage] = []
    for setting in StreamingSettings.all():
        try:
            value = setting.value()
        except (TypeError, ValueError):
            if setting.choices:
                errors.append(_not_a_choice(setting))
                continue
            errors.append(
                Error(
                    f"{setting.name} is {getattr(settings, setting.name)!r}, which is not a "
                    f"valid {type(setting.default).__name__}.",
                    hint=setting.doc,
                    id="streaming.E010",
                )
            )
            continue
        if setting.non_negative and value < 0:
            errors.append(
                Error(f"{setting.name} is {value!r}; it cannot be negative.", id="streaming.E012")
            )
    if not errors and conf.auth == "token" and not conf.api_token:
        errors.append(
            Error(
                "STREAM_AUTH is 'token' but STREAM_API_TOKEN is not set.",
                hint="Set STREAM_API_TOKEN to the shared secret clients send as "
                "`Authorization: Bearer <token>`.",
                id="streaming.E014",
            )
        )
    if not errors and conf.stale_after_seconds <= conf.row_heartbeat_seconds:
        errors.append(
            Error(
                f"STREAM_STALE_AFTER_SECONDS ({conf.stale_after_seconds:g}) is not above "
                f"STREAM_ROW_HEARTBEAT_SECONDS ({conf.row_heartbeat_seconds:g}): the sweep "
                "would end rows whose worker is alive.",
                hint="Leave it unset (twice the row heartbeat) or set it above the heartbeat.",
                id="streaming.E013",
            )
        )
    if not errors:
        errors += _idle_warnings()
        errors += _webhook_errors()
    return errors


def _webhook_errors() -> list[CheckMessage]:
    """Refuse webhooks that would go unsigned, a malformed secret, a URL that is not http(s)."""
    errors: list[CheckMessage] = []
    if conf.webhook_url and (problem := http_url_problem(conf.webhook_url)):
        errors.append(
            Error(
                f"STREAM_WEBHOOK_URL is {conf.webhook_url!r}: {problem}.",
                hint="Set it to an http:// or https:// URL, or leave it unset.",
                id="streaming.E032",
            )
        )
    secret = conf.webhook_secret
    if secret:
        try:
            decode_secret(secret)
        except ValueError as exc:
            errors.append(
                Error(
                    f"STREAM_WEBHOOK_SECRET is malformed: {exc}.",
                    hint="Use the Standard Webhooks form, whsec_ + base64 of 24 to 64 random "
                    "bytes.",
                    id="streaming.E030",
                )
            )
    elif conf.webhook_url or conf.webhook_allowed_hosts:
        errors.append(
            Error(
                "Webhooks are enabled (STREAM_WEBHOOK_URL or STREAM_WEBHOOK_ALLOWED_HOSTS) but "
                "STREAM_WEBHOOK_SECRET is not set: receivers could not tell them from forgeries.",
                hint="Set STREAM_WEBHOOK_SECRET to whsec_ + base64 of 24 to 64 random bytes.",
                id="streaming.E031",
            )
        )
    return errors


def _idle_warnings() -> list[CheckMessage]:
    """Warn of a stall watchdog that can never act, and of the setting it replaced."""
    warnings: list[CheckMessage] = []
    idle, deadline = conf.idle_timeout_seconds, conf.timeout_seconds
    if idle and idle >= deadline:
        warnings.append(
            Warning(
                f"STREAM_IDLE_TIMEOUT_SECONDS ({idle:g}) is not below STREAM_TIMEOUT_SECONDS "
                f"({deadline:g}): the deadline ends a silent stream first.",
                hint="Set it below the deadline, or to 0 to turn the stall watchdog off.",
                id="streaming.W001",
            )
        )
    if getattr(settings, "STREAM_UPSTREAM_IDLE_SECONDS", None) is not None:
        warnings.append(
            Warning(
                "STREAM_UPSTREAM_IDLE_SECONDS is no longer read.",
                hint="The stall watchdog of every source, STREAM_IDLE_TIMEOUT_SECONDS, took "
                "its place: set that instead.",
                id="streaming.W002",
            )
        )
    return warnings


def _not_a_choice(setting: Setting[Any]) -> Error:
    return Error(
        f"{setting.name} is {getattr(settings, setting.name)!r}.",
        hint=f"Use one of: {', '.join(map(str, setting.choices))}.",
        id="streaming.E011",
    )
