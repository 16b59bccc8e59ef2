"""What a chat request gives deer-flow's graph: its input state and its run config.

Mapped field by field as deer-flow's `_astream_workflow_generator` maps them: the
conversation, the topic, the clarification options and the `locale` go into the state (its
nodes read `state["locale"]`); the research options go into `configurable`, where its
`Configuration.from_runnable_config` reads them; `recursion_limit` stays at the top.
deer-flow passes a flat config that LangChain's `ensure_config` sorts the same way,
dropping options that are `None`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.types import Command

from streaming.api.requests import ChatMessage, ChatRequest


def workflow_input(request: ChatRequest) -> dict[str, Any] | Command[Any]:
    """Return deer-flow's workflow input for `request`, or the resume of its interrupt."""
    messages = request.model_dump(mode="json")["messages"]
    if request.interrupt_feedback and not request.auto_accepted_plan:
        resume = f"[{request.interrupt_feedback}]"
        if messages:
            resume += f" {messages[-1]['content']}"
        return Command(resume=resume)
    latest = messages[-1]["content"] if messages else ""
    history = clarification_history(request.messages)
    return {
        "messages": messages,
        "plan_iterations": 0,
        "final_report": "",
        "current_plan": None,
        "observations": [],
        "auto_accepted_plan": request.auto_accepted_plan,
        "enable_background_investigation": request.enable_background_investigation,
        "research_topic": latest,
        "clarification_history": history,
        "clarified_research_topic": clarified_topic(history) or latest,
        "enable_clarification": request.enable_clarification,
        "max_clarification_rounds": request.max_clarification_rounds,
        "locale": request.locale,
    }


def workflow_config(
    request: ChatRequest,
    *,
    thread_id: str,
    mcp_settings: dict[str, Any] | None,
    recursion_limit: int,
) -> dict[str, Any]:
    """Return the run's config: deer-flow's options under `configurable`, and the step limit."""
    options: dict[str, Any] = {
        "thread_id": thread_id,
        "resources": request.resources,
        "max_plan_iterations": request.max_plan_iterations,
        "max_step_num": request.max_step_num,
        "max_search_results": request.max_search_results,
        "mcp_settings": mcp_settings,
        "enable_web_search": request.enable_web_search,
        "report_style": request.report_style.value,
        "enable_deep_thinking": request.enable_deep_thinking,
        "interrupt_before_tools": request.interrupt_before_tools,
    }
    return {
        "recursion_limit": recursion_limit,
        "configurable": {name: value for name, value in options.items() if value is not None},
    }


def clarification_history(messages: Sequence[ChatMessage]) -> list[str]:
    """Return the user's messages, consecutive repeats dropped (deer-flow's history)."""
    history: list[str] = []
    for message in messages:
        text = message.text()
        if message.role in ("user", "human") and text and (not history or history[-1] != text):
            history.append(text)
    return history


def clarified_topic(history: Sequence[str]) -> str:
    """Return the topic as deer-flow builds it: the first message, then the answers."""
    if len(history) < 2:
        return history[0] if history else ""
    return f"{history[0]} - {', '.join(history[1:])}"
