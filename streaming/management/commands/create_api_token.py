"""`manage.py create_api_token <username>`: make a personal API token, printed once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from streaming.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create a personal API token for a user (STREAM_AUTH=users) and print it on the last "
        "line. Only its hash is stored: it cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        token = ApiToken(user=user, name=name)
        raw = token.generate()
        token.save()
        self.stderr.write(f"Created token {token.prefix}… for {username}; copy it now:")
        self.stdout.write(raw)
