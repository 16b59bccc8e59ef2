"""The record of every stream: one row that ends in exactly one recorded state."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from streaming.runs.endings import STOPPED_STATUSES, EndReason, Status

__all__ = [
    "ApiToken",
    "CancelledSession",
    "EndReason",
    "Kind",
    "SessionPanel",
    "Status",
    "StreamSession",
    "Transport",
    "WebhookDelivery",
]

# The permission that lets a staff member read and cancel every user's sessions.
MANAGE_ALL = "manage_all_sessions"
TOKEN_PREFIX = "dfs_"


class Kind(models.TextChoices):
    """Which stream a session serves."""

    CHAT = "chat", "chat"
    PROSE = "prose", "prose"


class Transport(models.TextChoices):
    """How the client is connected."""

    SSE = "sse", "SSE"
    WEBSOCKET = "websocket", "WebSocket"


class StreamSession(models.Model):
    """One stream, from its request to its one final state."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    transport = models.CharField(max_length=16, choices=Transport.choices)
    thread_id = models.CharField(max_length=256, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    end_reason = models.CharField(
        max_length=32, choices=EndReason.choices, blank=True, default=EndReason.NONE
    )
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        help_text="Last sign of life from the worker running the stream."
    )
    events_sent = models.PositiveIntegerField(
        default=0, help_text="Events handed to the client's connection."
    )
    last_event_id = models.PositiveIntegerField(
        default=0, help_text="Id of the last event the stream produced."
    )
    source = models.CharField(max_length=200, blank=True)
    worker = models.CharField(
        max_length=100, blank=True, help_text="The process that ran the stream (host:pid)."
    )
    first_event_ms = models.FloatField(
        null=True,
        blank=True,
        help_text="Milliseconds from the run's start to its first event (empty: it sent none).",
    )
    request_params = models.JSONField(default=dict, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    error = models.TextField(blank=True, help_text="Internal error detail, never sent to clients.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stream_sessions",
        help_text="The user who started the stream (none in the open and token modes).",
    )

    class Meta:
        ordering = ["-started_at"]
        permissions = [(MANAGE_ALL, "Can read and cancel every user's sessions")]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="session_status_heartbeat"),
            models.Index(fields=["end_reason", "started_at"], name="session_reason_started"),
            # The admin's filters and the cancelled view, each with the list's order.
            models.Index(fields=["status", "started_at"], name="session_status_started"),
            models.Index(fields=["kind", "started_at"], name="session_kind_started"),
            models.Index(fields=["transport", "started_at"], name="session_transport_started"),
            models.Index(fields=["client_address"], name="session_client_address"),
            # A thread's sessions, newest first (GET /api/threads/<id>/sessions).
            models.Index(fields=["thread_id", "-started_at"], name="session_thread_started"),
            # The live panel's last hour, read from the index alone (it covers its columns).
            models.Index(
                fields=["ended_at", "end_reason", "started_at", "first_event_ms"],
                name="session_ended_panel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        """Return how long the stream ran, or None while it runs."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class CancelledSessionManager(models.Manager["CancelledSession"]):
    """Only sessions that were stopped before they completed."""

    def get_queryset(self) -> models.QuerySet[CancelledSession]:
        return super().get_queryset().filter(status__in=STOPPED_STATUSES)


class CancelledSession(StreamSession):
    """A session that ended cancelled, timed out or interrupted (the admin's own view)."""

    objects: ClassVar[CancelledSessionManager] = CancelledSessionManager()

    class Meta:
        proxy = True
        verbose_name = "cancelled session"


class WebhookDelivery(models.Model):
    """One attempt to deliver a session's completion webhook, and what the receiver said."""

    session = models.ForeignKey(
        StreamSession, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first try, then each retry.")
    url = models.CharField(max_length=2048)
    at = models.DateTimeField(help_text="When the attempt began.")
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The receiver's HTTP status; empty if none came."
    )
    error = models.TextField(blank=True, help_text="Why the attempt failed, if it did.")
    duration_ms = models.PositiveIntegerField(help_text="From sending to the answer or failure.")

    class Meta:
        ordering = ["session", "at", "attempt"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"attempt {self.attempt}"

    @property
    def delivered(self) -> bool:
        """Return whether the receiver accepted it (a 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class SessionPanel(StreamSession):
    """The admin's live panel: streams live now and the last hour's, summed (no list)."""

    class Meta:
        proxy = True
        verbose_name = "live panel"
        verbose_name_plural = "live panel"


class ApiToken(models.Model):
    """A user's personal API token: only its hash is stored; it is shown once, when made."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="Its first characters.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash(raw: str) -> str:
        """Return the stored form of a token (a token has 256 random bits: SHA-256 suffices)."""
        return hashlib.sha256(raw.encode()).hexdigest()

    def generate(self) -> str:
        """Give this (unsaved) token a new secret and return it: the only time it is seen."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.key_hash = self.hash(raw)
        self.prefix = raw[: len(TOKEN_PREFIX) + 4]
        return raw
