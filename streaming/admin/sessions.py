"""Admin pages for stream sessions: every session, the cancelled ones, and a cancel action."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import uuid
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from streaming.admin import summary as admin_summary
from streaming.admin.readonly import ReadOnlyAdmin
from streaming.models import CancelledSession, StreamSession, WebhookDelivery
from streaming.runs.cancel import CancelOutcome, request_cancel
from streaming.runs.endings import LIVE_STATUSES, STOPPED_REASONS

_Session = TypeVar("_Session", bound=StreamSession)

SHORT_ID = 8
SHORT_THREAD = 18
TIME_FORMAT = "Y-m-d H:i:s"
DURATION = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())


class WebhookDeliveryInline(admin.TabularInline[WebhookDelivery, Any]):
    """The session's webhook attempts, read-only: when, where, and what the receiver said."""

    model = WebhookDelivery
    fk_name = "session"
    fields = readonly_fields = ("attempt", "sent", "url", "status_code", "error", "duration_ms")
    extra = 0
    can_delete = False
    verbose_name_plural = "webhook deliveries"

    @admin.display(description="sent", ordering="at")
    def sent(self, delivery: WebhookDelivery) -> str:
        return date_format(timezone.localtime(delivery.at), TIME_FORMAT)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the session may see how its webhook went.
        return request.user.has_perm("streaming.view_streamsession")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _SessionListAdmin(ReadOnlyAdmin[_Session]):
    """A read-only list and detail of session rows, cheap on large tables."""

    list_display = [
        "short_id",
        "kind",
        "transport",
        "status",
        "end_reason",
        "thread",
        "owner",
        "started",
        "duration",
        "events_sent",
    ]
    list_select_related = ["owner"]
    inlines = [WebhookDeliveryInline]
    list_filter = ["status", "end_reason", "kind", "transport", "owner"]
    date_hierarchy = "started_at"
    search_fields = ["id", "thread_id", "client_address"]
    search_help_text = "A session id (or its first characters), a thread id or a client address."
    # Counting a whole large table on every page is the slow part of an admin list.
    show_full_result_count = False
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["id", "kind", "transport", "source", "thread_id", "worker"]}),
        ("Outcome", {"fields": ["status", "end_reason", "events_sent", "last_event_id"]}),
        (
            "Timing",
            {"fields": ["started_at", "ended_at", "duration", "first_event_ms", "heartbeat_at"]},
        ),
        ("Client", {"fields": ["owner", "client_address", "user_agent"]}),
        ("Request", {"fields": ["request_parameters"]}),
        ("Internal error", {"fields": ["error_text"]}),
    ]
    readonly_fields = [
        "id",
        "kind",
        "transport",
        "source",
        "thread_id",
        "worker",
        "status",
        "end_reason",
        "events_sent",
        "last_event_id",
        "started_at",
        "ended_at",
        "duration",
        "first_event_ms",
        "heartbeat_at",
        "owner",
        "client_address",
        "user_agent",
        "request_parameters",
        "error_text",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[_Session], search_term: str
    ) -> tuple[QuerySet[_Session], bool]:
        """Match exact values (or an id's first characters), so indexes serve the search."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(thread_id=term)
        try:
            match |= Q(pk=uuid.UUID(term))
        except ValueError:
            # The short id the list shows, or any longer start of the id as written.
            prefix = term.lower()
            if len(prefix) >= 4 and all(c in "0123456789abcdef-" for c in prefix):
                match |= Q(id__startswith=prefix)
        with contextlib.suppress(ValueError):
            match |= Q(client_address=str(ipaddress.ip_address(term)))
        return queryset.filter(match), False

    @admin.display(description="session", ordering="id")
    def short_id(self, session: StreamSession) -> SafeString:
        return format_html('<span title="{}">{}</span>', session.id, session.id.hex[:SHORT_ID])

    @admin.display(description="thread", ordering="thread_id")
    def thread(self, session: StreamSession) -> str:
        if len(session.thread_id) <= SHORT_THREAD:
            return session.thread_id
        return format_html(
            '<span title="{}">{}…</span>', session.thread_id, session.thread_id[:SHORT_THREAD]
        )

    @admin.display(description="started", ordering="started_at")
    def started(self, session: StreamSession) -> str:
        return date_format(timezone.localtime(session.started_at), TIME_FORMAT)

    @admin.display(description="duration", ordering=DURATION)
    def duration(self, session: StreamSession) -> str | None:
        seconds = session.duration_seconds
        return None if seconds is None else format_duration(seconds)

    @admin.display(description="request parameters")
    def request_parameters(self, session: StreamSession) -> SafeString:
        text = json.dumps(session.request_params, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="session-text">{}</pre>', text)

    @admin.display(description="internal error")
    def error_text(self, session: StreamSession) -> SafeString | None:
        if not session.error:
            return None
        return format_html('<pre class="session-text">{}</pre>', session.error)


def format_duration(seconds: float) -> str:
    """Return a duration as `0.4 s`, `12 s`, `3 min 05 s` or `1 h 02 min`."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


async def _cancel_all(session_ids: list[uuid.UUID]) -> list[CancelOutcome]:
    return [await request_cancel(session_id) for session_id in session_ids]


@admin.register(StreamSession)
class StreamSessionAdmin(_SessionListAdmin[StreamSession]):
    """Every session; running ones can be cancelled from here."""

    actions = ["cancel_sessions"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Cancelling changes a live stream: it needs the change permission on sessions."""
        return request.user.has_perm("streaming.change_streamsession")

    @admin.action(description="Cancel selected running sessions", permissions=["cancel"])
    def cancel_sessions(self, request: HttpRequest, queryset: QuerySet[StreamSession]) -> None:
        """Send a cancel to each selected running session, on whichever worker runs it."""
        selected = queryset.count()
        running = list(queryset.filter(status__in=LIVE_STATUSES).values_list("pk", flat=True))
        outcomes = async_to_sync(_cancel_all)(running)
        sent = outcomes.count(CancelOutcome.SENT)
        parts = [
            ngettext(
                "Sent a cancel to %(count)d running session.",
                "Sent a cancel to %(count)d running sessions.",
                sent,
            )
            % {"count": sent}
        ]
        if selected > sent:
            parts.append(
                ngettext(
                    "%(count)d selected session was not running.",
                    "%(count)d selected sessions were not running.",
                    selected - sent,
                )
                % {"count": selected - sent}
            )
        self.message_user(request, " ".join(parts), messages.SUCCESS if sent else messages.WARNING)


class CancelledReasonFilter(admin.SimpleListFilter):
    """End reasons a cancelled, timed-out or interrupted session can have."""

    title = "end reason"
    parameter_name = "end_reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(reason.value, reason.label) for reason in STOPPED_REASONS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(end_reason=value)


@admin.register(CancelledSession)
class CancelledSessionAdmin(_SessionListAdmin[CancelledSession]):
    """Sessions that ended cancelled, timed out or interrupted, with a summary above."""

    list_filter = [CancelledReasonFilter, "kind", "transport", "owner"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        now = timezone.now()
        counts = admin_summary.reason_counts(now)
        summary = {
            "counts": counts,
            "total_day": sum(row.last_day for row in counts),
            "total_week": sum(row.last_week for row in counts),
            "chart": admin_summary.daily_chart(now),
        }
        return super().changelist_view(request, {**(extra_context or {}), **summary})
