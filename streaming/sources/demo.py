"""The offline, deterministic demo of deer-flow's research workflow (the default chat source)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from streaming.api.requests import ChatRequest
from streaming.conf import conf
from streaming.sources.base import Event
from streaming.sources.demo_text import Page, Plan, build_plan, fake_pages, pieces, report, summary

MAX_THREADS = 1000
INTERRUPT_OPTIONS = (
    {"text": "Edit plan", "value": "edit_plan"},
    {"text": "Start research", "value": "accepted"},
)


@dataclass(frozen=True, slots=True)
class _Message:
    """One assistant message: all its events share the id."""

    thread_id: str
    agent: str
    id: str = field(default_factory=lambda: f"run-{uuid.uuid4()}")

    def data(self, content: str = "", **extra: Any) -> dict[str, Any]:
        """Return event data in deer-flow's shape, without `content` when it is empty."""
        data: dict[str, Any] = {
            "thread_id": self.thread_id,
            "agent": self.agent,
            "id": self.id,
            "role": "assistant",
        }
        if content:
            data["content"] = content
        return data | extra

    def text(self, text: str, *, finish_reason: str = "stop") -> Iterator[Event]:
        """Stream `text` in small chunks, then an empty chunk that ends the message."""
        for piece in pieces(text):
            yield Event("message_chunk", self.data(piece))
        yield Event("message_chunk", self.data(finish_reason=finish_reason))

    def tool_call(self, name: str, args: Mapping[str, Any], call_id: str) -> Iterator[Event]:
        """Stream one tool call as LangChain does: the call, argument fragments, the end."""
        fragments = pieces(json.dumps(args, ensure_ascii=False))
        call = {"name": name, "args": dict(args), "id": call_id, "type": "tool_call"}
        head = {"name": name, "args": fragments[0], "id": call_id, "index": 0}
        yield Event(
            "tool_calls",
            self.data(tool_calls=[call], tool_call_chunks=[head | {"type": "tool_call_chunk"}]),
        )
        for fragment in fragments[1:]:
            chunk = {"name": "", "args": fragment, "id": "", "index": 0, "type": "tool_call_chunk"}
            yield Event("tool_call_chunks", self.data(tool_call_chunks=[chunk]))
        yield Event("message_chunk", self.data(finish_reason="tool_calls"))


def _tool_use(
    thread_id: str, agent: str, name: str, args: Mapping[str, Any], result: str
) -> Iterator[Event]:
    """Stream a message calling tool `name`, then the tool's result."""
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    yield from _Message(thread_id, agent).tool_call(name, args, call_id)
    data = _Message(thread_id, agent, id=str(uuid.uuid4())).data(result, tool_call_id=call_id)
    yield Event("tool_call_result", data)


def _code_step(thread_id: str, step: Mapping[str, Any], pages: list[Page]) -> Iterator[Event]:
    """Stream the coder running a script over the sources found so far."""
    titles = [page["title"] for page in pages]
    code = f"titles = {json.dumps(titles, ensure_ascii=False)}\nprint(len(titles), 'sources')"
    result = f"Successfully executed:\n```python\n{code}\n```\nStdout: {len(titles)} sources"
    yield from _tool_use(thread_id, "coder", "python_repl_tool", {"code": code}, result)
    yield from _Message(thread_id, "coder").text(summary(step, pages))


@dataclass(frozen=True, slots=True)
class _ThreadState:
    """What the workflow remembers of a thread between requests."""

    question: str
    plan: Plan


class DemoWorkflowSource:
    """Stream a deterministic, offline imitation of deer-flow's research workflow.

    A first request hands off from `coordinator` to `planner`, which streams a plan and
    stops at the `interrupt` (or, with `auto_accepted_plan`, goes straight on). A follow-up
    with `interrupt_feedback` `accepted` researches the thread's plan (`researcher` with
    `web_search`, `coder` with `python_repl_tool`) and `reporter` writes the report;
    `edit_plan` re-plans with the new message as feedback. Each thread's question and last
    plan are kept in an in-process LRU of `max_threads` entries: the demo's stand-in for
    LangGraph's in-memory checkpointer, so it is per process and lost on restart.
    """

    def __init__(self, *, max_threads: int = MAX_THREADS) -> None:
        self._threads: OrderedDict[str, _ThreadState] = OrderedDict()
        self._max_threads = max_threads

    async def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Yield the workflow's events for `request`, pausing before each one."""
        delay = conf.demo_delay_seconds
        with closing(self._events(request, thread_id)) as events:
            for event in events:
                await asyncio.sleep(delay)
                yield event

    def _events(self, request: ChatRequest, thread_id: str) -> Generator[Event, None, None]:
        """Yield the events of one run of the workflow."""
        text = request.last_user_text()
        feedback = None if request.auto_accepted_plan else request.interrupt_feedback
        feedback = (feedback or "").strip().lower()
        state = self._recall(thread_id)
        question = state.question if state else " ".join(text.split())
        if feedback == "accepted":
            plan = state.plan if state else build_plan(question, request)
            yield from self._research(thread_id, question, plan, request)
            return
        if feedback == "edit_plan":
            plan = build_plan(question, request, feedback=text)
        else:
            question = " ".join(text.split())
            plan = build_plan(question, request)
            yield from _handoff(thread_id, question, request.locale)
        self._remember(thread_id, _ThreadState(question, plan))
        yield from _planner(thread_id, plan, deep_thinking=request.enable_deep_thinking)
        if request.auto_accepted_plan:
            yield from self._research(thread_id, question, plan, request)
        else:
            yield _interrupt(thread_id)

    def _research(
        self, thread_id: str, question: str, plan: Plan, request: ChatRequest
    ) -> Iterator[Event]:
        """Yield the research team's work on each step, then the report."""
        pages: list[Page] = []
        findings: list[str] = []
        for step in plan["steps"]:
            if step["step_type"] == "processing":
                yield from _code_step(thread_id, step, pages)
                findings.append(summary(step, pages))
                continue
            found = fake_pages(step, request.max_search_results)
            result = json.dumps(found, ensure_ascii=False)
            yield from _tool_use(
                thread_id, "researcher", "web_search", {"query": step["title"]}, result
            )
            findings.append(summary(step, found))
            yield from _Message(thread_id, "researcher").text(findings[-1])
            pages += found
        text = report(question, plan, findings, pages, request.report_style.value)
        yield from _Message(thread_id, "reporter").text(text)

    def _recall(self, thread_id: str) -> _ThreadState | None:
        """Return what is remembered of `thread_id`, marking it recently used."""
        state = self._threads.get(thread_id)
        if state is not None:
            self._threads.move_to_end(thread_id)
        return state

    def _remember(self, thread_id: str, state: _ThreadState) -> None:
        """Store `state` for `thread_id`, forgetting the least recently used threads."""
        self._threads[thread_id] = state
        self._threads.move_to_end(thread_id)
        while len(self._threads) > self._max_threads:
            self._threads.popitem(last=False)


def _handoff(thread_id: str, question: str, locale: str) -> Iterator[Event]:
    """Yield the coordinator handing the question to the planner."""
    args = {"research_topic": question, "locale": locale}
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    yield from _Message(thread_id, "coordinator").tool_call("handoff_to_planner", args, call_id)


def _planner(thread_id: str, plan: Plan, *, deep_thinking: bool) -> Iterator[Event]:
    """Yield the planner streaming `plan` as JSON, after its reasoning when asked for."""
    message = _Message(thread_id, "planner")
    if deep_thinking:
        reasoning = f"{plan['thought']} Each step should be small enough to check on its own."
        for piece in pieces(reasoning):
            yield Event("message_chunk", message.data(reasoning_content=piece))
    yield from message.text(json.dumps(plan, ensure_ascii=False, indent=2))


def _interrupt(thread_id: str) -> Event:
    """Return the event that asks the user to review the plan."""
    return Event(
        "interrupt",
        {
            "thread_id": thread_id,
            "id": f"human_feedback:{uuid.uuid4()}",
            "role": "assistant",
            "content": "Please Review the Plan.",
            "finish_reason": "interrupt",
            "options": [dict(option) for option in INTERRUPT_OPTIONS],
        },
    )
