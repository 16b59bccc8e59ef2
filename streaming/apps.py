"""The streaming app's configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register

from streaming.checks import check_settings, check_sources


class StreamingConfig(AppConfig):
    """Register the streaming app."""

    name = "streaming"
    verbose_name = "Streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks."""
        register(check_settings)
        register(check_sources)
