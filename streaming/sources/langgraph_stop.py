"""Stop the model calls of a graph's sync nodes when its run ends.

Closing the graph's stream cancels its async nodes, and with them their HTTP requests to
the model. A sync node runs in a worker thread that a cancel does not reach: its request
would run on to its end, tokens paid for after nobody listens. But LangGraph streams every
chat-model call (`stream_mode="messages"`), so each token passes the run's callbacks in
that thread: this handler raises there once the run has ended, which closes the request
(the SDK's stream closes its response on the way out). A call not yet started is refused.
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
    """Raise in the model calls of sync nodes (worker threads) after `end()`.

    Its hooks take any arguments: their signatures differ across langchain-core versions.
    """

    raise_error = True  # LangChain logs a handler's error and goes on, unless this is set
    run_inline = True  # called where the event happens: in the worker thread for sync nodes

    def __init__(self) -> None:
        self._ended = threading.Event()
        self._loop_thread = threading.get_ident()

    def end(self) -> None:
        """Mark the run ended: its sync nodes' model calls stop at their next token."""
        self._ended.set()

    def _check(self) -> None:
        # Async nodes run on the event loop's thread and are cancelled there already.
        if self._ended.is_set() and threading.get_ident() != self._loop_thread:
            logger.info("Stopping a sync node's model call: its stream has ended")
            raise RunEndedError("the stream this model call served has ended")

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        """Stop a streaming call of a sync node at its next token."""
        self._check()

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """Refuse a chat-model call a sync node starts after the end."""
        self._check()

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        """Refuse a completion call a sync node starts after the end."""
        self._check()


def _not_a_stop(record: logging.LogRecord) -> bool:
    """Keep LangChain from logging an expected stop as a callback's failure (a warning)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (args[:1] == (ModelCallStopper.__name__,) and RunEndedError.__name__ in str(args))


logging.getLogger("langchain_core.callbacks.manager").addFilter(_not_a_stop)
