"""Sources backed by any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, ...)."""

from __future__ import annotations

import functools
import ssl
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from streaming.api.requests import ChatMessage, ChatRequest, ContentItem, ProseRequest
from streaming.conf import conf
from streaming.observe.metrics import FirstToken
from streaming.sources.base import Event, SourceError

# What a client is told about each kind of upstream failure (no URLs, keys or bodies).
REFUSED_KEY = "The model server refused the API key."
RATE_LIMITED = "The model server is rate limiting requests."
UNREACHABLE = "The model server could not be reached."
NO_ANSWER = "The model server did not answer."
BROKEN_OFF = "The model server broke off the stream."
MALFORMED = "The model server sent a malformed response."
REPORTED = "The model server reported an error."

CHAT_PROMPT = (
    "You are the assistant of a research chat. Answer the user's latest message in the "
    "context of the conversation: accurate, well organised, in Markdown. If you are not "
    "sure of a fact, say so. Write in the user's language (their locale is {locale})."
)
PROSE_RULES = (
    " Keep the language of the text. Reply with the resulting text only, in Markdown: "
    "no preamble, no quotes around it, no comments about what you changed."
)
PROSE_PROMPTS = {
    "continue": "Continue the user's text with the next one to three sentences, in its "
    "voice and style, following on from its last sentence. Reply with the new sentences "
    "only, without repeating the text.",
    "improve": "Improve the user's text: clearer wording, better flow, more precise words. "
    "Keep its meaning, tone and roughly its length.",
    "shorter": "Shorten the user's text to about half its length, keeping its main points "
    "and its tone.",
    "longer": "Lengthen the user's text to about twice its length with relevant detail, "
    "explanation or examples, keeping its tone.",
    "fix": "Fix the spelling, grammar and punctuation of the user's text. Change nothing else.",
    "zap": "Apply the user's command to the text that follows it.",
}


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of the model's answer."""

    content: str
    reasoning: str
    finish_reason: str | None


class OpenAIChatSource:
    """Stream the model's answer to the conversation as one deer-flow agent's message."""

    @property
    def models(self) -> dict[str, list[str]]:
        """Return the models `/api/config` offers."""
        return {"basic": [conf.llm_model], "reasoning": []}

    async def stream(self, request: ChatRequest, *, thread_id: str) -> AsyncGenerator[Event, None]:
        """Yield the answer as `message_chunk` events sharing one message id."""
        message = {
            "thread_id": thread_id,
            "agent": conf.openai_agent,
            "id": f"run-{uuid.uuid4()}",
            "role": "assistant",
        }
        prompt = CHAT_PROMPT.format(locale=request.locale)
        messages = [_system(prompt), *_conversation(request.messages)]
        async for delta in complete(messages):
            data: dict[str, Any] = dict(message)
            if delta.content:
                data["content"] = delta.content
            if delta.reasoning:
                data["reasoning_content"] = delta.reasoning
            if delta.finish_reason:
                data["finish_reason"] = delta.finish_reason
            yield Event("message_chunk", data)


class OpenAIProseSource:
    """Stream the model's rewrite of the text for the prose editor's option."""

    async def stream(self, request: ProseRequest) -> AsyncGenerator[Event, None]:
        """Yield the text as it arrives."""
        text = request.prompt
        if request.option == "zap":
            text = f"Command: {request.command}\n\nText:\n{request.prompt}"
        messages = [_system(PROSE_PROMPTS[request.option] + PROSE_RULES), _user(text)]
        async for delta in complete(messages):
            if delta.content:
                yield Event("", delta.content)


async def complete(messages: Sequence[ChatCompletionMessageParam]) -> AsyncGenerator[Delta, None]:
    """Stream the model's reply to `messages`; raise SourceError for upstream failures.

    The HTTP response is closed when this generator ends for any reason, cancellation
    included, so the server stops generating (and billing) at once. The SDK retries a
    failed request only until the response starts; a stream that fails midway is not
    retried. Silence is not this function's to judge: waiting for the answer to start and
    for each next chunk is what the run's stall watchdog bounds, as for every source
    (STREAM_IDLE_TIMEOUT_SECONDS; runs/watchdog.py).
    """
    async with _client() as client:
        first_token = FirstToken("openai")
        try:
            stream = await client.chat.completions.create(
                model=conf.llm_model, messages=messages, stream=True
            )
        except openai.APIError as exc:
            raise request_failed(exc) from exc
        async with stream:
            finished = False
            while True:
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except openai.APIConnectionError as exc:
                    raise SourceError(BROKEN_OFF) from exc
                except openai.APIError as exc:
                    raise SourceError(REPORTED) from exc
                except ValueError as exc:  # a data line that is not JSON
                    raise SourceError(MALFORMED) from exc
                delta = _delta(chunk)
                if delta is not None:
                    first_token.seen()
                    finished = finished or delta.finish_reason is not None
                    yield delta
    if not finished:
        raise SourceError(BROKEN_OFF, detail="the stream ended without a finish_reason")


def _delta(chunk: object) -> Delta | None:
    """Return the first choice's news in `chunk`, None if it has none (role, usage)."""
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        raise SourceError(MALFORMED, detail=f"a chunk without choices: {chunk!r:.300}")
    if not choices:
        return None
    delta = getattr(choices[0], "delta", None)
    extra = getattr(delta, "model_extra", None) or {}
    content = getattr(delta, "content", None) or ""
    # vLLM and DeepSeek send `reasoning_content`; OpenRouter and Ollama call it `reasoning`.
    reasoning = extra.get("reasoning_content") or extra.get("reasoning") or ""
    finish_reason = getattr(choices[0], "finish_reason", None)
    if not (
        isinstance(content, str)
        and isinstance(reasoning, str)
        and isinstance(finish_reason, str | None)
    ):
        raise SourceError(MALFORMED, detail=f"an unexpected chunk: {chunk!r:.300}")
    if not (content or reasoning or finish_reason):
        return None
    return Delta(content, reasoning, finish_reason)


def request_failed(exc: openai.APIError) -> SourceError:
    """Return the public account of a request that failed before streaming began."""
    if isinstance(exc, openai.AuthenticationError):
        return SourceError(REFUSED_KEY)
    if isinstance(exc, openai.RateLimitError):
        return SourceError(RATE_LIMITED)
    if isinstance(exc, openai.APITimeoutError):
        return SourceError(NO_ANSWER)
    if isinstance(exc, openai.APIConnectionError):
        return SourceError(UNREACHABLE)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return SourceError(f"The model server failed (HTTP {exc.status_code}).")
        return SourceError(f"The model server rejected the request (HTTP {exc.status_code}).")
    return SourceError(MALFORMED)


def _client() -> openai.AsyncOpenAI:
    """Return a client for one stream: closing it closes that stream's connection."""
    return openai.AsyncOpenAI(
        api_key=conf.openai_api_key,
        base_url=conf.openai_base_url or None,
        # No read timeout: the model's silence, before or during its answer, is the stall
        # watchdog's to end (one rule for every source), not a second timer's.
        timeout=httpx2.Timeout(conf.openai_timeout_seconds, read=None),
        max_retries=conf.openai_max_retries,
        http_client=openai.DefaultAsyncHttpx2Client(verify=_ssl_context()),
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Return the default TLS context, built once: loading CA certificates takes ~20 ms."""
    return httpx2.create_ssl_context()


def _system(text: str) -> ChatCompletionMessageParam:
    return {"role": "system", "content": text}


def _user(text: str) -> ChatCompletionMessageParam:
    return {"role": "user", "content": text}


def _conversation(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    """Return the request's user and assistant messages in the chat-completions shape."""
    conversation: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "user":
            conversation.append({"role": "user", "content": _parts(message.content)})
        elif message.role == "assistant" and message.text():
            conversation.append({"role": "assistant", "content": message.text()})
    return conversation


def _parts(content: str | list[ContentItem]) -> str | list[ChatCompletionContentPartParam]:
    """Return a user message's content: its text, or its text and image parts."""
    if isinstance(content, str):
        return content
    parts: list[ChatCompletionContentPartParam] = []
    for item in content:
        if item.text:
            parts.append({"type": "text", "text": item.text})
        if item.image_url:
            parts.append({"type": "image_url", "image_url": {"url": item.image_url}})
    return parts
