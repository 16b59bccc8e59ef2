"""The control plane: cancel a live stream from anywhere, over the channel layer.

Every live run joins a group named after its session id; a cancel is a message to that
group, so it reaches the run on whichever worker it runs (with the Redis layer).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer

from streaming.models import Status, StreamSession

logger = logging.getLogger(__name__)

CANCEL = "stream.cancel"


class CancelOutcome(enum.Enum):
    """What a cancel request found."""

    SENT = "sent"
    NOT_FOUND = "not_found"
    ALREADY_ENDED = "already_ended"


def group_name(session_id: uuid.UUID) -> str:
    """Return the channel-layer group of a session's live run."""
    return f"stream.{session_id.hex}"


async def request_cancel(session_id: uuid.UUID) -> CancelOutcome:
    """Ask the live run of `session_id` to end as cancelled by a user."""
    status = (
        await StreamSession.objects.filter(pk=session_id).values_list("status", flat=True).afirst()
    )
    if status is None:
        return CancelOutcome.NOT_FOUND
    if status != Status.RUNNING:
        return CancelOutcome.ALREADY_ENDED
    await _layer().group_send(group_name(session_id), {"type": CANCEL})
    return CancelOutcome.SENT


async def listen_for_cancel(session_id: uuid.UUID, on_cancel: Callable[[], None]) -> None:
    """Join the session's group and call `on_cancel` when a cancel arrives."""
    layer = _layer()
    group = group_name(session_id)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    try:
        while True:
            message: dict[str, Any] = await layer.receive(channel)
            if message.get("type") == CANCEL:
                on_cancel()
                return
    finally:
        try:
            await asyncio.shield(layer.group_discard(group, channel))
        except Exception as exc:  # The group expires on its own; a stream must not fail here.
            logger.warning("Could not leave group %s: %s", group, exc)


def _layer() -> Any:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS is not configured")
    return layer
