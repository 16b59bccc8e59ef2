"""What the demo writes: its plans, made-up search results, summaries and reports.

Built from the question by templates, so the demo needs no model and no network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streaming.api.requests import ChatRequest

# (step_type, title, description) of the plan's steps; `{topic}` is the shortened question.
STEP_TEMPLATES = (
    ("research", "Background: {topic}", "Gather definitions, history and context on {topic}."),
    ("research", "Current state: {topic}", "Collect recent developments and figures on {topic}."),
    ("processing", "Comparison of sources: {topic}", "Tabulate the sources found so far."),
    ("research", "Debates: {topic}", "Find differing views and open questions on {topic}."),
    ("research", "Outlook: {topic}", "Look for forecasts and expert expectations on {topic}."),
)
# Words before a noun phrase: "What is the history of tea?", "Give me a report on tea".
NOUN_OPENER = re.compile(
    r"^(?:(?:what|who)(?:'s|\s+(?:is|are|was|were))|tell me about|explain|describe"
    r"|(?:please\s+)?(?:(?:give me|write(?: me)?|prepare)\s+(?:an?\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:report|summary|overview)\s+(?:on|about|of)|look into|find out about))"
    r"\s+",
    re.IGNORECASE,
)
# "How do deer survive winter?" reads "how deer survive winter" without its "do"; other
# auxiliaries ("does", "is", "can") would have to move behind the subject.
DO_QUESTION = re.compile(r"^(how|why|when|where|what)\s+do\s+", re.IGNORECASE)
DIRECT_QUESTION = re.compile(
    r"^(?:how|why|when|where|what|which|who|is|are|was|were|do|does|did|can|could|should"
    r"|will|would|has|have)\b",
    re.IGNORECASE,
)
SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+")
DEMO_NOTICE = "offline demo: no language model or search engine was used"

Page = dict[str, str]
Plan = dict[str, Any]


def pieces(text: str, *, words: int = 2) -> list[str]:
    """Split `text` into pieces of a few words that join back to `text` exactly."""
    tokens = re.findall(r"\s*\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


@dataclass(frozen=True, slots=True)
class _Topic:
    """What a question asks about: `text` for the plan's titles, `thought` for the planner."""

    text: str
    thought: str


def _topic(question: str) -> _Topic:
    """Return the subject of `question`'s first question (or first sentence).

    Requests to the assistant around it ("Give me a short report") are left out. A direct
    question that cannot be turned into an object ("Why is the sky blue?") is quoted.
    """
    sentences = SENTENCE_BREAK.split(question.strip())
    asked = next((s for s in sentences if s.endswith("?")), sentences[0])
    opener = NOUN_OPENER.match(asked)
    rest = asked[opener.end() :] if opener else asked
    phrase = _shorten(rest)
    if opener or not DIRECT_QUESTION.match(phrase):
        text = _shorten(re.sub(r"^the\s+", "", rest, flags=re.IGNORECASE))
        article = re.sub(r"^(the|an?)\b", lambda m: m[1].lower(), phrase, flags=re.IGNORECASE)
        return _Topic(text, f"The user wants to understand {article}.")
    clause = DO_QUESTION.sub(lambda m: m[1].lower() + " ", phrase)
    if clause != phrase:
        return _Topic(clause, f"The user wants to understand {clause}.")
    return _Topic(phrase, f'The user asks: "{asked}"')


def _shorten(text: str, limit: int = 80) -> str:
    """Return `text` on one line, without final punctuation, cut at a word near `limit`."""
    line = " ".join(text.split()).rstrip(".?!")
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + "…"
    return line or "the question"


def _slug(text: str) -> str:
    """Return a URL path segment for `text`."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "topic"


def build_plan(question: str, request: ChatRequest, *, feedback: str = "") -> Plan:
    """Return a plan for `question` in the planner's JSON shape, revised by `feedback`."""
    subject = _topic(question)
    topic = subject.text
    steps = [
        {
            "need_search": step_type == "research",
            "title": title.format(topic=topic),
            "description": description.format(topic=topic),
            "step_type": step_type,
        }
        for step_type, title, description in STEP_TEMPLATES
    ]
    thought = subject.thought
    if feedback:
        thought = f"The user asked to revise the plan: {_shorten(feedback)}. " + thought
        steps.insert(
            0,
            {
                "need_search": True,
                "title": f"Address the feedback: {_shorten(feedback, 60)}",
                "description": f"Research {topic} with this feedback in mind: {feedback.strip()}",
                "step_type": "research",
            },
        )
    steps = steps[: request.max_step_num]
    return {
        "locale": request.locale,
        "has_enough_context": False,
        "thought": f"{thought} This plan has {len(steps)} step(s) ({DEMO_NOTICE}).",
        "title": topic[:1].upper() + topic[1:],
        "steps": steps,
    }


def fake_pages(step: Mapping[str, Any], count: int) -> list[Page]:
    """Return `count` made-up search results for `step`, marked as demo data."""
    return [
        {
            "type": "page",
            "title": f"Demo page {n}: {step['title']}",
            "url": f"https://example.com/demo/{_slug(step['title'])}/{n}",
            "content": f"Demo data, not a real search result. {step['description']}",
        }
        for n in range(1, min(count, 5) + 1)
    ]


def summary(step: Mapping[str, Any], pages: list[Page]) -> str:
    """Return what the demo learned in `step`, citing its pages."""
    if step["step_type"] == "processing":
        return f"A short Python script listed the {len(pages)} demo sources gathered so far."
    return (
        f'The demo search for "{step["title"]}" returned {len(pages)} made-up pages, '
        f"led by [{pages[0]['title']}]({pages[0]['url']}). {step['description']}"
    )


def report(question: str, plan: Plan, findings: list[str], pages: list[Page], style: str) -> str:
    """Return the reporter's markdown for the research done."""
    steps = plan["steps"]
    points = "\n".join(f"- **{step['title']}**: {step['description']}" for step in steps)
    sections = "\n\n".join(
        f"### {step['title']}\n\n{finding}" for step, finding in zip(steps, findings, strict=True)
    )
    references = "\n".join(f"- [{page['title']}]({page['url']})" for page in pages)
    return (
        f"# {plan['title']}\n\n"
        f"*Report style: {style}. Made-up sources ({DEMO_NOTICE}).*\n\n"
        f"## Question\n\n{question}\n\n## Key Points\n\n{points}\n\n"
        f"## Findings\n\n{sections}\n\n"
        f"## Conclusion\n\nThe {len(steps)} steps above outline how a real research run "
        f"would answer: {question}\n\n## References\n\n{references}\n"
    )
