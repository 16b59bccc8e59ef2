"""Stop the model calls of a graph's nodes when its run ends, sync nodes' included.

Closing the graph's stream cancels its async nodes, and with them their HTTP requests to
the model. A sync node runs in a worker thread that a cancel does not reach: its request
would run on to its end, tokens paid for after nobody listens. And on Python 3.11,
`asyncio.wait_for` (langchain-openai's per-chunk timeout) loses a cancel that arrives as a
chunk does, so an async node may stream on too. But LangGraph streams every chat-model call
(`stream_mode="messages"`): each token passes the run's callbacks, in the node's thread.
Once the run has ended this handler raises there, which closes the request (the SDK's
stream closes its response on the way out). A call not yet started is refused.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

logger = logging.getLogger(__name__)


class RunEndedError(Exception):
    """The run this model call belongs to has ended."""


class ModelCallStopper(BaseCallbackHandler):
    """Raise in the run's model calls after `end()`.

    Its hooks take any arguments: their signatures differ across langchain-core versions.
    """

    raise_error = True  # LangChain logs a handler's error and goes on, unless this is set
    run_inline = True  # called where the event happens: in the worker thread for sync nodes

    def __init__(self) -> None:
        self._ended = threading.Event()

    def end(self) -> None:
        """Mark the run ended: its model calls stop at their next token."""
        self._ended.set()

    def _check(self) -> None:
        if self._ended.is_set():
            logger.info("Stopping a model call: its stream has ended")
            raise RunEndedError("the stream this model call served has ended")

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        """Stop a streaming call at its next token."""
        self._check()

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """Refuse a chat-model call started after the end."""
        self._check()

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        """Refuse a completion call started after the end."""
        self._check()


def _not_a_stop(record: logging.LogRecord) -> bool:
    """Keep LangChain from logging an expected stop as a callback's failure (a warning)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (args[:1] == (ModelCallStopper.__name__,) and RunEndedError.__name__ in str(args))


logging.getLogger("langchain_core.callbacks.manager").addFilter(_not_a_stop)
