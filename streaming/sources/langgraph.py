"""Sources that run a compiled LangGraph graph, mapped to deer-flow's events as its server does.

The mapping follows deer-flow's `src/server/app.py` (`_stream_graph_events` and the helpers
it calls): the agent is the first namespace element (a subgraph's node) or the message's
`langgraph_node`; AI chunks become `message_chunk`, `tool_calls` or `tool_call_chunks`;
tool messages become `tool_call_result`; an `__interrupt__` update becomes `interrupt`
with the plan options. Needs `requirements-langgraph.txt`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import openai
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from streaming.api.requests import ChatMessage, ChatRequest, ProseRequest
from streaming.conf import conf
from streaming.observe.metrics import FirstToken
from streaming.sources import openai as openai_source
from streaming.sources.base import Event

INTERRUPT_OPTIONS = (
    {"text": "Edit plan", "value": "edit_plan"},
    {"text": "Start research", "value": "accepted"},
)


class GraphLoader:
    """Load graphs by dotted path once each, with the configured checkpointer."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[str, str], Any] = {}
        self._memory = InMemorySaver()

    async def load(self, path: str, *, setting: str, checkpointer: str) -> Any:
        """Return the compiled graph at `path` (a graph, or a function that builds one)."""
        if not path:
            raise ImproperlyConfigured(f"{setting} must name the graph to run (a dotted path).")
        key = (path, checkpointer)
        if key not in self._graphs:
            target = import_string(path)
            graph = target if hasattr(target, "astream") else target()
            saver = await self._checkpointer(checkpointer)
            if saver is not None:
                graph = graph.copy(update={"checkpointer": saver})
            self._graphs[key] = graph
        return self._graphs[key]

    async def _checkpointer(self, name: str) -> Any:
        """Return the saver for LANGGRAPH_CHECKPOINTER: `memory`, `none` or a factory's path."""
        if name == "none":
            return None
        if name == "memory":
            return self._memory
        saver = import_string(name)
        if callable(saver):
            saver = saver()
        if inspect.isawaitable(saver):
            saver = await saver
        return saver


class LangGraphChatSource:
    """Run STREAM_CHAT_GRAPH for a chat request, resuming an interrupt with its feedback."""

    def __init__(self) -> None:
        self._loader = GraphLoader()

    async def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Yield the graph's messages, tool calls, tool results and interrupts."""
        graph = await self._loader.load(
            conf.chat_graph, setting="STREAM_CHAT_GRAPH", checkpointer=conf.langgraph_checkpointer
        )
        chunks = graph.astream(
            workflow_input(request),
            config=workflow_config(request, thread_id),
            stream_mode=["messages", "updates"],
            subgraphs=True,
        )
        # Closing the graph's stream cancels its running nodes: none runs after a cancel.
        first_token = FirstToken("langgraph")
        async with aclosing(chunks):
            try:
                async for namespace, _, data in chunks:
                    first_token.seen()
                    for event in graph_events(namespace, data, thread_id):
                        yield event
            except openai.APIError as exc:  # a node's model call, through LangChain
                raise openai_source.request_failed(exc) from exc


class LangGraphProseSource:
    """Run STREAM_PROSE_GRAPH (deer-flow's prose graph takes `content`, `option`, `command`)."""

    def __init__(self) -> None:
        self._loader = GraphLoader()

    async def stream(self, request: ProseRequest) -> AsyncGenerator[Event, None]:
        """Yield the text of the graph's messages as it streams."""
        graph = await self._loader.load(
            conf.prose_graph, setting="STREAM_PROSE_GRAPH", checkpointer="none"
        )
        first_token = FirstToken("langgraph")
        chunks = graph.astream(
            {"content": request.prompt, "option": request.option, "command": request.command},
            stream_mode="messages",
            subgraphs=True,
        )
        async with aclosing(chunks):
            try:
                async for _, (message, _) in chunks:
                    if isinstance(message.content, str) and message.content:
                        first_token.seen()
                        yield Event("", message.content)
            except openai.APIError as exc:
                raise openai_source.request_failed(exc) from exc


def workflow_input(request: ChatRequest) -> dict[str, Any] | Command[Any]:
    """Return deer-flow's workflow input for `request`, or the resume of its interrupt."""
    messages = request.model_dump(mode="json")["messages"]
    if request.interrupt_feedback and not request.auto_accepted_plan:
        resume = f"[{request.interrupt_feedback}]"
        if messages:
            resume += f" {messages[-1]['content']}"
        return Command(resume=resume)
    latest = messages[-1]["content"] if messages else ""
    history = _clarification_history(request.messages)
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
        "clarified_research_topic": _clarified_topic(history) or latest,
        "enable_clarification": request.enable_clarification,
        "max_clarification_rounds": request.max_clarification_rounds,
    }


def workflow_config(request: ChatRequest, thread_id: str) -> dict[str, Any]:
    """Return the run's config: deer-flow's options, under `configurable`."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "resources": request.resources,
            "max_plan_iterations": request.max_plan_iterations,
            "max_step_num": request.max_step_num,
            "max_search_results": request.max_search_results,
            "mcp_settings": request.mcp_settings if conf.enable_mcp else {},
            "report_style": request.report_style.value,
            "enable_deep_thinking": request.enable_deep_thinking,
            "enable_web_search": request.enable_web_search,
            "interrupt_before_tools": request.interrupt_before_tools,
            "locale": request.locale,
        }
    }


def graph_events(namespace: Sequence[str], data: Any, thread_id: str) -> Iterable[Event]:
    """Return the deer-flow events for one item of `astream(..., subgraphs=True)`."""
    if isinstance(data, dict):
        interrupts = data.get("__interrupt__")
        return [_interrupt_event(interrupts[0], thread_id)] if interrupts else []
    message, metadata = data
    agent = namespace[0].split(":")[0] if namespace else metadata.get("langgraph_node", "unknown")
    event = _message_event(message, metadata, thread_id, agent)
    return [event] if event is not None else []


def _message_event(
    message: BaseMessage, metadata: Mapping[str, Any], thread_id: str, agent: str
) -> Event | None:
    content = message.content
    data: dict[str, Any] = {
        "thread_id": thread_id,
        "agent": agent,
        "id": message.id,
        "role": "assistant",
        "checkpoint_ns": metadata.get("checkpoint_ns", ""),
        "langgraph_node": metadata.get("langgraph_node", ""),
        "langgraph_path": metadata.get("langgraph_path", ""),
        "langgraph_step": metadata.get("langgraph_step", ""),
        "content": content if isinstance(content, str) else json.dumps(content, ensure_ascii=False),
    }
    if reasoning := message.additional_kwargs.get("reasoning_content"):
        data["reasoning_content"] = reasoning
    if finish_reason := message.response_metadata.get("finish_reason"):
        data["finish_reason"] = finish_reason
    if isinstance(message, ToolMessage):
        name = "tool_call_result"
        data["tool_call_id"] = message.tool_call_id
    elif not isinstance(message, AIMessageChunk):
        return None
    elif message.tool_calls:
        name = "tool_calls"
        data["tool_calls"] = message.tool_calls
        data["tool_call_chunks"] = _tool_call_chunks(message.tool_call_chunks)
    elif message.tool_call_chunks:
        name = "tool_call_chunks"
        data["tool_call_chunks"] = _tool_call_chunks(message.tool_call_chunks)
    else:
        name = "message_chunk"
    if data["content"] == "":
        del data["content"]
    return Event(name, data)


def _tool_call_chunks(chunks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": chunk.get("name", ""),
            "args": _sanitize_args(chunk.get("args", "")),
            "id": chunk.get("id", ""),
            "index": chunk.get("index", 0),
            "type": chunk.get("type", ""),
        }
        for chunk in chunks
    ]


def _sanitize_args(args: Any) -> str:
    """Escape brackets in argument fragments, as deer-flow's `sanitize_args` does."""
    if not isinstance(args, str):
        return ""
    return (
        args.replace("[", "&#91;")
        .replace("]", "&#93;")
        .replace("{", "&#123;")
        .replace("}", "&#125;")
    )


def _interrupt_event(interrupt: Any, thread_id: str) -> Event:
    # deer-flow used the interrupt's `ns[0]`; LangGraph 0.6 replaced it with a unique `id`.
    value = interrupt.value
    data: dict[str, Any] = {
        "thread_id": thread_id,
        "id": interrupt.id,
        "role": "assistant",
        "content": value if isinstance(value, str) else json.dumps(value, default=str),
        "finish_reason": "interrupt",
        "options": [dict(option) for option in INTERRUPT_OPTIONS],
    }
    if data["content"] == "":
        del data["content"]
    return Event("interrupt", data)


def _clarification_history(messages: Sequence[ChatMessage]) -> list[str]:
    """Return the user's messages, consecutive repeats dropped (deer-flow's history)."""
    history: list[str] = []
    for message in messages:
        text = message.text()
        if message.role in ("user", "human") and text and (not history or history[-1] != text):
            history.append(text)
    return history


def _clarified_topic(history: Sequence[str]) -> str:
    """Return the topic as deer-flow builds it: the first message, then the answers."""
    if len(history) < 2:
        return history[0] if history else ""
    return f"{history[0]} - {', '.join(history[1:])}"
