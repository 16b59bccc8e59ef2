"""The control plane: cancel a live stream from anywhere, over the channel layer.

Every live run joins a group named after its session id; a cancel is a message to that
group, so it reaches the run on whichever worker it runs (with the Redis layer). The
in-memory layer reaches this process only, where the run is found directly: then runs join
no group and keep no listener (measured: `InMemoryChannelLayer.receive()` scans every
channel on each call, which made admitting a stream dearer with each live one).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from streaming import records
from streaming.runs.endings import LIVE_STATUSES, EndReason
from streaming.runs.registry import find_live_run

logger = logging.getLogger(__name__)

CANCEL = "stream.cancel"
LISTEN_RETRY_SECONDS = 0.5


class CancelOutcome(enum.Enum):
    """What a cancel request found."""

    SENT = "sent"
    NOT_FOUND = "not_found"
    ALREADY_ENDED = "already_ended"


def group_name(session_id: uuid.UUID) -> str:
    """Return the channel-layer group of a session's live run."""
    return f"stream.{session_id.hex}"


async def request_cancel(
    session_id: uuid.UUID, *, reason: EndReason = EndReason.USER_CANCEL
) -> CancelOutcome:
    """Ask the live run of `session_id` to end as cancelled: by a user, or for `reason`
    (a newer run superseding it)."""
    session = await records.get_session(session_id)
    if session is None:
        return CancelOutcome.NOT_FOUND
    if session.status not in LIVE_STATUSES:
        return CancelOutcome.ALREADY_ENDED
    if needs_layer():
        await _layer().group_send(group_name(session_id), {"type": CANCEL, "reason": reason})
    else:
        _cancel_here(session_id, reason)
    return CancelOutcome.SENT


def needs_layer() -> bool:
    """Return whether cancels travel over the channel layer (it reaches other processes)."""
    return not isinstance(_layer(), InMemoryChannelLayer)


def _cancel_here(session_id: uuid.UUID, reason: EndReason) -> None:
    if (run := find_live_run(session_id)) is not None:
        run.loop.call_soon_threadsafe(run.cancel_requested, reason)


class CancelSubscription:
    """A live run's membership of its session's group, through which cancels arrive."""

    def __init__(self, layer: Any, group: str, channel: str) -> None:
        self._layer = layer
        self._group = group
        self._channel = channel

    @classmethod
    async def join(cls, session_id: uuid.UUID) -> CancelSubscription:
        """Join the group of `session_id`; from now on a cancel for it reaches this run."""
        layer = _layer()
        channel = await layer.new_channel()
        subscription = cls(layer, group_name(session_id), channel)
        await layer.group_add(subscription._group, channel)
        return subscription

    async def wait(self) -> EndReason:
        """Return why, when a cancel arrives (a user's, unless it names a known reason)."""
        while True:
            message: dict[str, Any] = await self._layer.receive(self._channel)
            if message.get("type") == CANCEL:
                return _reason(message.get("reason"))

    async def next_cancel(self, session_id: uuid.UUID) -> EndReason:
        """Return why, when a cancel arrives; a passing channel-layer fault (Redis timing out
        under load) must not leave the run deaf to cancels: listen again after a pause."""
        while True:
            try:
                return await self.wait()
            except Exception as exc:
                logger.warning("Stream %s: cancel channel failed (%s)", session_id, exc)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)

    async def leave(self) -> None:
        """Leave the group (best effort: a group left behind expires on its own)."""
        try:
            await self._layer.group_discard(self._group, self._channel)
        except Exception as exc:
            logger.warning("Could not leave group %s: %s", self._group, exc)


def _reason(value: Any) -> EndReason:
    # A message from a worker of an older release carries no reason: a user's cancel.
    if value in (EndReason.USER_CANCEL, EndReason.SUPERSEDED):
        return EndReason(value)
    return EndReason.USER_CANCEL


def _layer() -> Any:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS is not configured")
    return layer
