"""Admin pages for stream sessions (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from streaming.models import StreamSession


@admin.register(StreamSession)
class StreamSessionAdmin(admin.ModelAdmin[StreamSession]):
    """List and inspect sessions; nothing is added or edited by hand."""

    list_display = [
        "id",
        "kind",
        "transport",
        "status",
        "end_reason",
        "thread_id",
        "started_at",
        "events_sent",
    ]
    list_filter = ["status", "end_reason", "kind", "transport"]
    search_fields = ["id", "thread_id"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StreamSession | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StreamSession | None = None) -> bool:
        return False
