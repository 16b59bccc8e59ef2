"""Server shutdown: live streams end `interrupted/server_shutdown`, not as disconnects.

On SIGTERM daphne runs Twisted's "before shutdown" triggers: its own cancels every
application instance at once (so every stream would look like a client that left). Ours,
registered first, runs in the same tick just before it: it marks the shutdown, asks every
live run to stop as `server_shutdown`, and makes Twisted wait (bounded) until their records
are written. Readers that are cancelled during a shutdown still offer the run's last frame
(`error`, reason `shutdown`) to a connection that is still open.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from streaming.conf import conf
from streaming.liveness import all_live_runs
from streaming.models import EndReason

logger = logging.getLogger(__name__)

_state = {"in_progress": False}


def in_progress() -> bool:
    """Return whether the server is shutting down."""
    return _state["in_progress"]


def begin() -> None:
    """Mark the shutdown and ask every live run to end as interrupted."""
    _state["in_progress"] = True
    runs = all_live_runs()
    logger.info("Shutting down: interrupting %d live streams", len(runs))
    for run in runs:
        run.request_stop(EndReason.SERVER_SHUTDOWN)


async def wait_for_runs() -> None:
    """Wait until every live run has recorded its end (bounded by the cancel grace)."""
    tasks = {run.task for run in all_live_runs() if run.task is not None}
    if tasks:
        await asyncio.wait(tasks, timeout=conf.cancel_grace_seconds)


def install_daphne_hook() -> None:
    """Register the shutdown trigger with daphne's Twisted reactor, when daphne serves us."""
    if "daphne.server" not in sys.modules:
        return
    # Imported here: importing the reactor elsewhere would install Twisted's default one.
    from twisted.internet import defer, reactor

    def before_shutdown() -> Any:
        begin()
        return defer.Deferred.fromFuture(asyncio.ensure_future(wait_for_runs()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]
