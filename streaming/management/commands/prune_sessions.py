"""`manage.py prune_sessions`: delete ended sessions older than a number of days."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streaming.housekeeping import DEFAULT_PRUNE_BATCH, DEFAULT_PRUNE_DAYS, prune_sessions


class Command(BaseCommand):
    help = "Delete ended sessions that started more than --days days ago (running ones stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_PRUNE_DAYS,
            help=f"Keep this many days of sessions (default {DEFAULT_PRUNE_DAYS}).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_PRUNE_BATCH,
            help=f"Rows deleted per statement (default {DEFAULT_PRUNE_BATCH}).",
        )

    def handle(self, *args: Any, days: int, batch_size: int, **options: Any) -> None:
        if days < 0 or batch_size < 1:
            raise CommandError("--days must be 0 or more and --batch-size 1 or more.")
        deleted = prune_sessions(days=days, batch_size=batch_size)
        self.stdout.write(f"Deleted {deleted} session(s) older than {days} day(s).")
