"""A research graph with deer-flow's shapes, calling an OpenAI-compatible model for real.

Like deer-flow's `build_graph()`: `coordinator` (sync) answers in `state["locale"]` and
hands off to `planner` with a tool call; `planner` (sync) writes the plan; `human_feedback`
interrupts for review unless the plan is auto-accepted (`[edit_plan]` plans again);
`researcher` (async) runs an agent subgraph that loops while the model calls `web_search`,
then puts the pages it found into the state's `citations`; `reporter` (sync) writes the
report. Every
model call goes through langchain-openai to OPENAI_BASE_URL (the tests' loopback server).
"""

from __future__ import annotations

import json
import operator
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from pydantic import SecretStr

from streaming.conf import conf

PAGES = {
    "tea history": [
        {"type": "page", "title": "茶の歴史", "url": "https://example.com/tea", "content": "Old."},
        {"type": "page", "title": "Tea", "url": "https://example.org/tea", "content": "Older."},
    ]
}


class ResearchState(MessagesState):
    """The part of deer-flow's `State` these nodes use."""

    locale: str
    research_topic: str
    auto_accepted_plan: bool
    current_plan: str | None
    citations: Annotated[list[dict[str, Any]], operator.add]


def model() -> ChatOpenAI:
    """Return the chat model, on the server the test started."""
    return ChatOpenAI(
        model="fake-model",
        base_url=conf.openai_base_url,
        api_key=SecretStr("sk-test"),
        max_retries=0,
        timeout=5,
    )


@tool
def handoff_to_planner(research_topic: str, locale: str) -> None:
    """Hand the research over to the planner."""


@tool
def web_search(query: str) -> str:
    """Search the web for `query`."""
    return json.dumps(PAGES.get(query, []), ensure_ascii=False)


def _prompt(state: ResearchState, role: str) -> list[BaseMessage]:
    return [SystemMessage(f"You are the {role}. Answer in {state['locale']}."), *state["messages"]]


def coordinator(state: ResearchState) -> Command[Literal["planner", "__end__"]]:
    reply = model().bind_tools([handoff_to_planner]).invoke(_prompt(state, "coordinator"))
    return Command(goto="planner" if reply.tool_calls else "__end__")


def planner(state: ResearchState) -> Command[Literal["human_feedback"]]:
    plan = model().invoke(_prompt(state, "planner"))
    return Command(update={"current_plan": plan.content}, goto="human_feedback")


def human_feedback(state: ResearchState) -> Command[Literal["planner", "researcher"]]:
    if state.get("auto_accepted_plan"):
        return Command(goto="researcher")
    feedback = str(interrupt("Please Review the Plan."))
    return Command(goto="researcher" if feedback.startswith("[accepted]") else "planner")


async def _agent(state: MessagesState) -> Command[Literal["tools", "__end__"]]:
    reply = await model().bind_tools([web_search]).ainvoke(state["messages"])
    return Command(update={"messages": [reply]}, goto="tools" if reply.tool_calls else "__end__")


def _research_agent() -> Any:
    agent = StateGraph(MessagesState)
    agent.add_node("agent", _agent)
    agent.add_node("tools", ToolNode([web_search]))
    agent.add_edge(START, "agent")
    agent.add_edge("tools", "agent")
    return agent.compile()


RESEARCH_AGENT = _research_agent()


async def researcher(state: ResearchState) -> Command[Literal["reporter"]]:
    """Run the research agent (a loop of the model and its tool), as deer-flow's does."""
    result = await RESEARCH_AGENT.ainvoke({"messages": _prompt(state, "researcher")})
    pages = [
        page
        for message in result["messages"]
        if isinstance(message, ToolMessage)
        for page in json.loads(str(message.content))
    ]
    citations = [{"url": page["url"], "title": page["title"]} for page in pages]
    return Command(update={"citations": citations}, goto="reporter")


def reporter(state: ResearchState) -> dict[str, Any]:
    report: AIMessage = model().invoke(_prompt(state, "reporter"))
    return {"messages": [report]}


def build_graph() -> Any:
    """Build the graph (compiled without a checkpointer: the source adds one)."""
    graph = StateGraph(ResearchState)
    graph.add_node("coordinator", coordinator)
    graph.add_node("planner", planner)
    graph.add_node("human_feedback", human_feedback)
    graph.add_node("researcher", researcher)
    graph.add_node("reporter", reporter)
    graph.add_edge(START, "coordinator")
    graph.add_edge("reporter", END)
    return graph.compile()
