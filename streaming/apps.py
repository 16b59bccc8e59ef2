"""The streaming app's configuration."""

from __future__ import annotations

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    """Register the streaming app."""

    name = "streaming"
    verbose_name = "Streaming"
    default_auto_field = "django.db.models.BigAutoField"
