"""The WebSocket transport: one stream at a time per socket, opened and run as over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from streaming.api.access import ANYONE, Caller, authenticate_socket, require_session
from streaming.api.bodies import MESSAGE, parse_json_object, validate
from streaming.api.clients import ClientInfo, query_value
from streaming.api.clients import header as header_value
from streaming.api.errors import ApiError
from streaming.api.event_ids import parse_event_id
from streaming.api.requests import ChatRequest, ProseRequest
from streaming.conf import conf
from streaming.models import EndReason, Transport
from streaming.observe.context import StreamTags
from streaming.runs.cancel import request_cancel
from streaming.runs.frames import Frame, encode_json, json_data, utf8_safe
from streaming.runs.opening import open_chat_stream, open_prose_stream, open_resume
from streaming.runs.readers import Followable
from streaming.transports.pump import encoded, tags_of

logger = logging.getLogger(__name__)

# Close code for a refused token (4000-4999 are the application's own).
CLOSE_UNAUTHORIZED = 4401


class StreamConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Run chat and prose streams over a WebSocket (contract §5)."""

    stream: Followable | None = None
    session_id: uuid.UUID | None = None
    pump: asyncio.Task[None] | None = None
    connected = False
    caller: Caller = ANYONE

    async def connect(self) -> None:
        """Accept the socket when STREAM_AUTH lets its caller in (token or session cookie)."""
        caller = await authenticate_socket(self.scope, self._authorization())
        if caller is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.caller = caller
        self.connected = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Cancel the running stream (recorded as a client disconnect) and wait for it."""
        self.connected = False
        pump = self.pump
        if pump is not None and not pump.done():
            pump.cancel()
            await asyncio.wait({pump}, timeout=conf.cancel_grace_seconds)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Parse one message; a message that is not a JSON object gets an error reply."""
        raw = text_data if text_data is not None else (bytes_data or b"")
        try:
            content = parse_json_object(raw, MESSAGE)
        except ApiError as exc:
            await self._reply_error(exc.detail)
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Act on a message: start a stream, or cancel the running one."""
        kind = content.get("type")
        if kind in ("chat.start", "prose.start", "resume") and self._busy():
            await self._reply_error("A stream is already running on this socket.")
        elif kind in ("chat.start", "prose.start"):
            await self._start(kind, content.get("request", {}))
        elif kind == "resume":
            await self._resume(content.get("session_id"), content.get("last_event_id", 0))
        elif kind == "cancel":
            await self._cancel()
        else:
            await self._reply_error(f"Unknown message type: {kind!r}.")

    def _busy(self) -> bool:
        return self.pump is not None and not self.pump.done()

    async def _cancel(self) -> None:
        if not self._busy() or self.session_id is None:
            await self._reply_error("No stream is running.")
        else:  # The run here or on another worker: the one way a user cancels.
            await request_cancel(self.session_id)

    async def _resume(self, session_id: Any, last_event_id: Any) -> None:
        try:
            target = uuid.UUID(str(session_id))
        except ValueError:
            await self._reply_error("`session_id` must be a session's UUID.")
            return
        try:
            after = parse_event_id(last_event_id)
            await require_session(self.caller, target)
            stream = await open_resume(target, after=after)
        except ApiError as exc:
            await self._reply_error(exc.detail)
            return
        self._begin(target, stream, after=after)

    async def _start(self, kind: str, request: Any) -> None:
        if not isinstance(request, dict):
            await self._reply_error("`request` must be a JSON object.")
            return
        client = ClientInfo.from_scope(self.scope, user_id=self.caller.user_id)
        try:
            if kind == "chat.start":
                chat = validate(ChatRequest, request)
                run = await open_chat_stream(chat, transport=Transport.WEBSOCKET, client=client)
            else:
                prose = validate(ProseRequest, request)
                run = await open_prose_stream(prose, transport=Transport.WEBSOCKET, client=client)
        except ApiError as exc:  # with what it adds (a busy thread's `session_id`)
            await self._reply_error(exc.detail, **exc.extra())
            return
        await self.send_json({"type": "session", "session_id": str(run.session_id)})
        self._begin(run.session_id, run)

    def _begin(self, session_id: uuid.UUID, stream: Followable, *, after: int = 0) -> None:
        self.session_id, self.stream = session_id, stream
        pump = self._pump(stream, tags_of(stream, session_id), after)
        self.pump = asyncio.create_task(pump, name=f"ws-{session_id}")

    async def _pump(self, stream: Followable, tags: StreamTags, after: int) -> None:
        """Send the stream's events, then how it ended.

        The reader is closed at once however the pump stops (design rule 4): at the end, when
        `disconnect()` cancels it, or when a send finds the client gone (uvicorn raises an
        OSError; `disconnect()` follows).
        """
        messages = encoded(stream, tags=tags, after=after, comment=_no_message, frames=_messages)
        try:
            async with contextlib.aclosing(messages):
                async for message in messages:
                    if self.connected:
                        await self.send(text_data=message)
            if self.connected:
                outcome = stream.outcome or EndReason.NONE
                await self.send_json({"type": "end", "status": outcome.status, "reason": outcome})
        except OSError:
            self.connected = False

    async def _reply_error(self, detail: Any, **extra: Any) -> None:
        if self.connected:
            await self.send_json({"type": "error", "detail": detail, **extra})

    def _authorization(self) -> str:
        """Return the bearer credentials: the header, or `?token=` (browsers cannot set it)."""
        if header := header_value(self.scope, b"authorization"):
            return header
        token = query_value(self.scope, "token")
        return f"Bearer {token}" if token else ""


def _no_message(text: str) -> list[str]:
    return []  # Comments keep proxies from cutting SSE; a WebSocket has its own pings.


def _messages(frames: list[Frame]) -> list[str]:
    # The data is already JSON (encoded once, in the log): splice it in.
    return [
        utf8_safe(
            f'{{"type":"event","id":{frame.id},'
            f'"event":{encode_json(frame.name)},"data":{json_data(frame)}}}'
        )
        for frame in frames
    ]
