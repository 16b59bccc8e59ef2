"""Server shutdown: live streams end `interrupted/server_shutdown`, not as disconnects.

On SIGTERM daphne stops Twisted's reactor, whose "before shutdown" trigger cancels every
application instance at once: every stream would look like a client that left, and Django
would leave its request tasks orphaned. uvicorn instead waits for every open response, so
long streams would hold the process until its graceful-shutdown timeout, then be cancelled.
So the server's SIGTERM and SIGINT handlers are wrapped (daphne: once its reactor runs;
uvicorn: at the ASGI lifespan's startup; uvicorn sends the lifespan's shutdown only after
its graceful drain, too late): live runs are stopped first (each records `server_shutdown` and
sends its final `error` frame, reason `shutdown`, to readers still connected), and only when
their records are written (bounded by STREAM_CANCEL_GRACE_SECONDS) and the webhooks in flight
delivered (bounded by it again) does the server's own shutdown begin. From then on new
streams are refused (503, `opening.py`). daphne's "before shutdown" trigger and uvicorn's
lifespan shutdown do the same for any other way the server stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from streaming.conf import conf
from streaming.models import EndReason
from streaming.observe import metrics
from streaming.runs import webhooks
from streaming.runs.registry import all_live_runs

logger = logging.getLogger(__name__)

_state = {"in_progress": False}


def in_progress() -> bool:
    """Return whether the server is shutting down."""
    return _state["in_progress"]


def interrupt_live_runs() -> asyncio.Future[Any]:
    """Mark the shutdown and end every live run as interrupted, now.

    Return a future that is done when their records are written (bounded by the grace),
    and then their webhooks, and those already in flight, are delivered (bounded by the
    grace again; the rest are abandoned).
    """
    _state["in_progress"] = True
    runs = all_live_runs()
    if runs:
        logger.info("Shutting down: interrupting %d live streams", len(runs))
    stops = {asyncio.ensure_future(run.stop(EndReason.SERVER_SHUTDOWN)) for run in runs}
    return asyncio.ensure_future(_stop_then_drain(stops))


async def _stop_then_drain(stops: set[asyncio.Task[None]]) -> None:
    if stops:
        await asyncio.wait(stops, timeout=conf.cancel_grace_seconds)
    await webhooks.drain(within=conf.cancel_grace_seconds)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def wrap_stop_signals(schedule: Callable[[Callable[[], None]], object]) -> None:
    """Make SIGTERM and SIGINT stop the live runs first, then call the server's handler.

    `schedule` is the server's thread-safe way onto its event loop: a signal handler must
    not touch the loop directly.
    """
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if callable(previous):
            signal.signal(signum, _stop_runs_first(previous, schedule))


def _stop_runs_first(
    previous: Callable[[int, FrameType | None], Any],
    schedule: Callable[[Callable[[], None]], object],
) -> Callable[[int, FrameType | None], None]:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        def stop_runs_then_server() -> None:
            interrupt_live_runs().add_done_callback(lambda _: previous(signum, frame))

        schedule(stop_runs_then_server)

    return on_signal


def install_daphne_hook() -> None:
    """Hook the shutdown into daphne's Twisted reactor, when daphne serves us."""
    if "daphne.server" not in sys.modules:
        return
    # Imported here: importing the reactor elsewhere would install Twisted's default one.
    from twisted.internet import defer, reactor

    def before_shutdown() -> Any:
        return defer.Deferred.fromFuture(interrupt_live_runs())

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]
    # Twisted installs its signal handlers when the reactor starts; wrap them then.
    reactor.callWhenRunning(wrap_stop_signals, reactor.callFromThread)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Handle the ASGI lifespan protocol (uvicorn): hook the shutdown in at startup."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            wrap_stop_signals(asyncio.get_running_loop().call_soon_threadsafe)
            metrics.clear_dead_workers()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await interrupt_live_runs()
            metrics.worker_exited()
            await send({"type": "lifespan.shutdown.complete"})
            return
