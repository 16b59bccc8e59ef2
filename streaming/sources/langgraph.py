"""Sources that run a compiled LangGraph graph, served as deer-flow's server serves it.

What the request gives the graph is in `langgraph_input`, how its items become deer-flow's
events in `langgraph_events`, and how its sync nodes' model calls stop in `langgraph_stop`.
Needs `requirements-langgraph.txt`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import openai
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError

from streaming.api.requests import ChatRequest, ProseRequest
from streaming.conf import conf
from streaming.observe.metrics import FirstToken
from streaming.sources import openai as openai_source
from streaming.sources.base import Event, SourceError
from streaming.sources.langgraph_events import GraphEvents
from streaming.sources.langgraph_input import workflow_config, workflow_input
from streaming.sources.langgraph_stop import ModelCallStopper, RunEndedError

logger = logging.getLogger(__name__)

RECURSION_LIMIT_MESSAGE = "The research took more steps than AGENT_RECURSION_LIMIT allows."


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
        """Yield the graph's messages, tool calls, tool results, interrupts and citations."""
        graph = await self._loader.load(
            conf.chat_graph, setting="STREAM_CHAT_GRAPH", checkpointer=conf.langgraph_checkpointer
        )
        config = workflow_config(
            request,
            thread_id=thread_id,
            mcp_settings=request.mcp_settings if conf.enable_mcp else {},
            recursion_limit=conf.agent_recursion_limit,
        )
        mapping = GraphEvents(thread_id)
        stopper = ModelCallStopper()
        chunks = graph.astream(
            workflow_input(request),
            config={**config, "callbacks": [stopper]},
            stream_mode=["messages", "updates"],
            subgraphs=True,
        )
        first_token = FirstToken("langgraph")
        async with _model_errors(), _stopping(chunks, stopper):
            async for namespace, _, data in chunks:
                first_token.seen()
                for event in mapping.events(namespace, data):
                    yield event
        final_state = None if mapping.citations else await _final_state(graph, thread_id)
        if (citations := mapping.citations_event(final_state)) is not None:
            yield citations


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
        stopper = ModelCallStopper()
        chunks = graph.astream(
            {"content": request.prompt, "option": request.option, "command": request.command},
            config={"recursion_limit": conf.agent_recursion_limit, "callbacks": [stopper]},
            stream_mode="messages",
            subgraphs=True,
        )
        async with _model_errors(), _stopping(chunks, stopper):
            async for _, (message, _) in chunks:
                if isinstance(message.content, str) and message.content:
                    first_token.seen()
                    yield Event("", message.content)


@asynccontextmanager
async def _stopping(chunks: Any, stopper: ModelCallStopper) -> AsyncIterator[None]:
    """Stop the run's model calls, then close its stream (cancelling its async nodes).

    Closing the stream does not wait for a sync node's thread: without the stopper, its
    model call would run on to its end. A node the stopper stopped fails with
    `RunEndedError`; the run still ends for the reason it was ending.
    """
    try:
        yield
    finally:
        stopper.end()
        with contextlib.suppress(RunEndedError):
            await chunks.aclose()


@asynccontextmanager
async def _model_errors() -> AsyncIterator[None]:
    """Turn a node's model failure and a run past its step limit into public messages."""
    try:
        yield
    except openai.APIError as exc:  # a node's model call, through LangChain
        raise openai_source.request_failed(exc) from exc
    except GraphRecursionError as exc:
        raise SourceError(
            RECURSION_LIMIT_MESSAGE, detail=f"AGENT_RECURSION_LIMIT={conf.agent_recursion_limit}"
        ) from exc


async def _final_state(graph: Any, thread_id: str) -> Mapping[str, Any] | None:
    """Return the thread's state after the run (deer-flow's fallback for `citations`)."""
    if graph.checkpointer is None:
        return None
    try:
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    except Exception:
        # The research was sent already: a failing read costs its citations, not the stream.
        logger.warning(
            "Thread %s: its state could not be read for citations", thread_id, exc_info=True
        )
        return None
    values = getattr(snapshot, "values", None)
    return values if isinstance(values, Mapping) else None
