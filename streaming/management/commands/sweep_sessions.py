"""`manage.py sweep_sessions`: end running sessions whose worker stopped sending heartbeats."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streaming.conf import conf
from streaming.housekeeping import run_every, sweep_stale_sessions


class Command(BaseCommand):
    help = (
        "Mark running sessions whose heartbeat is older than --stale-after seconds as "
        "interrupted (worker lost). Runs once, or every --every seconds until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Age of a heartbeat that counts as stale (default: STREAM_STALE_AFTER_SECONDS).",
        )
        parser.add_argument(
            "--every",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Sweep again every SECONDS until SIGTERM or Ctrl-C (a worker process).",
        )

    def handle(
        self, *args: Any, stale_after: float | None, every: float | None, **options: Any
    ) -> None:
        threshold = conf.stale_after_seconds if stale_after is None else stale_after
        if threshold <= 0 or (every is not None and every <= 0):
            raise CommandError("--stale-after and --every must be positive numbers of seconds.")

        def sweep() -> None:
            swept = sweep_stale_sessions(stale_after=threshold)
            self.stdout.write(
                f"Marked {swept} stale session(s) interrupted (worker lost); "
                f"stale after {threshold:g} s."
            )

        if every is None:
            sweep()
            return
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        run_every(every, sweep, stop=stop)
        self.stdout.write("Stopped.")
