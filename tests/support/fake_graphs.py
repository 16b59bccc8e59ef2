"""LangGraph graphs for the tests: deer-flow's workflow in miniature, driven by a fake model.

The chat graph: `coordinator` hands off to `planner` with a tool call, `planner` streams
the plan, `human_feedback` interrupts for review; on `[accepted]` the `researcher`
subgraph calls `web_search` and sums up, then `reporter` writes the report; on
`[edit_plan]` the planner plans again. `script` holds the model's replies in order (an
exception is raised instead) and `ran` what the nodes did; `reset()` starts a test afresh.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt


@dataclass
class Script:
    """What the fake model answers, what the nodes did, and a gate a node waits on."""

    replies: deque[AIMessage | Exception] = field(default_factory=deque)
    ran: list[str] = field(default_factory=list)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    savers_made: int = 0

    def __iter__(self) -> Iterator[AIMessage]:
        return self

    def __next__(self) -> AIMessage:
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply


script = Script()


def reset(*replies: AIMessage | Exception) -> Script:
    """Start a test with the model's `replies` and nothing run yet."""
    global script
    script = Script(deque(replies))
    return script


class StreamingFakeChatModel(GenericFakeChatModel):
    """langchain_core's fake chat model, streaming tool calls and finish reasons as providers do.

    Text comes word by word; each tool call comes as a chunk with its name and id and the
    first half of its arguments, then a chunk with the rest; the last chunk carries
    `finish_reason` in its response metadata.
    """

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = next(script)
        text = reply.content if isinstance(reply.content, str) else ""
        chunks = [AIMessageChunk(content=token) for token in re.split(r"(?<= )", text) if token]
        for index, call in enumerate(reply.tool_calls):
            args = json.dumps(call["args"])
            half = len(args) // 2
            head = {"name": call["name"], "args": args[:half], "id": call["id"], "index": index}
            tail = {"name": None, "args": args[half:], "id": None, "index": index}
            chunks += [AIMessageChunk(content="", tool_call_chunks=[head])]
            chunks += [AIMessageChunk(content="", tool_call_chunks=[tail])]
        finish_reason = "tool_calls" if reply.tool_calls else "stop"
        chunks.append(
            AIMessageChunk(
                content="",
                response_metadata={"finish_reason": finish_reason},
                chunk_position="last",
            )
        )
        for chunk in chunks:
            chunk.id = reply.id
            generation = ChatGenerationChunk(message=chunk)
            await asyncio.sleep(0)
            if run_manager:
                await run_manager.on_llm_new_token(str(chunk.content), chunk=generation)
            yield generation


model = StreamingFakeChatModel(messages=iter(()))


def say(text: str, *, id: str) -> AIMessage:
    """Return a reply of the model that is text."""
    return AIMessage(content=text, id=id)


def call(name: str, args: dict[str, Any], *, id: str, call_id: str) -> AIMessage:
    """Return a reply of the model that calls tool `name`."""
    return AIMessage(content="", id=id, tool_calls=[{"name": name, "args": args, "id": call_id}])


@tool
async def web_search(query: str) -> str:
    """Search the web for `query`."""
    page = {"type": "page", "title": f"About {query}", "url": "https://example.com/tea"}
    return json.dumps([page | {"content": "Tea is old."}])


async def _answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


async def coordinator(state: MessagesState) -> Command[Literal["planner"]]:
    script.ran.append("coordinator")
    return Command(update=await _answer(state), goto="planner")


async def planner(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    # deer-flow's nodes read their options from `configurable`, resources as objects.
    options = config["configurable"]
    titles = [resource.title for resource in options["resources"]]
    script.ran.append(f"planner (steps: {options['max_step_num']}, resources: {titles})")
    return await _answer(state)


def human_feedback(state: MessagesState) -> Command[Literal["planner", "researcher"]]:
    feedback = interrupt("Please Review the Plan.")
    script.ran.append(f"human_feedback: {feedback}")
    return Command(goto="researcher" if str(feedback).startswith("[accepted]") else "planner")


async def reporter(state: MessagesState) -> dict[str, Any]:
    script.ran.append("reporter")
    return await _answer(state)


def _researcher() -> Any:
    research = StateGraph(MessagesState)
    research.add_node("agent", _answer)
    research.add_node("tools", ToolNode([web_search]))
    research.add_edge(START, "agent")
    research.add_conditional_edges(
        "agent", lambda state: "tools" if state["messages"][-1].tool_calls else END
    )
    research.add_edge("tools", "agent")
    return research.compile()


def build_chat_graph() -> Any:
    """Build the chat graph (compiled without a checkpointer: the source adds one)."""
    graph = StateGraph(MessagesState)
    graph.add_node("coordinator", coordinator)
    graph.add_node("planner", planner)
    graph.add_node("human_feedback", human_feedback)
    graph.add_node("researcher", _researcher())
    graph.add_node("reporter", reporter)
    graph.add_edge(START, "coordinator")
    graph.add_edge("planner", "human_feedback")
    graph.add_edge("researcher", "reporter")
    graph.add_edge("reporter", END)
    return graph.compile()


async def writer(state: MessagesState) -> dict[str, Any]:
    """Stream one message, then wait for the gate (as a long model call would)."""
    script.ran.append("writer started")
    update = await _answer(state)
    script.waiting.set()
    try:
        await script.gate.wait()
    except asyncio.CancelledError:
        script.ran.append("writer cancelled")
        raise
    return update


async def after_writer(state: MessagesState) -> dict[str, Any]:
    script.ran.append("after_writer")
    return {}


def _cancel_graph() -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("writer", writer)
    graph.add_node("after_writer", after_writer)
    graph.add_edge(START, "writer")
    graph.add_edge("writer", "after_writer")
    graph.add_edge("after_writer", END)
    return graph.compile()


CANCEL_GRAPH = _cancel_graph()


class ProseState(MessagesState):
    """deer-flow's prose graph input."""

    content: str
    option: str
    command: str


async def prose_writer(state: ProseState) -> dict[str, Any]:
    script.ran.append(f"prose: {state['option']} {state['command']} {state['content']}")
    return {"messages": [await model.ainvoke(state["content"])]}


def _prose_graph() -> Any:
    graph = StateGraph(ProseState)
    graph.add_node("prose_writer", prose_writer)
    graph.add_edge(START, "prose_writer")
    graph.add_edge("prose_writer", END)
    return graph.compile()


PROSE_GRAPH = _prose_graph()


def make_saver() -> InMemorySaver:
    """Make a checkpointer (LANGGRAPH_CHECKPOINTER may name a factory like this one)."""
    script.savers_made += 1
    return InMemorySaver()
