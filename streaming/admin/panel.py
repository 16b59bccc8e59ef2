"""The admin's live panel: streams live now per worker, and the last hour's endings and timings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from streaming.admin import panel_chart, panel_stats
from streaming.admin.charts import StackedChart
from streaming.admin.panel_stats import Percentiles, WorkerLive
from streaming.admin.readonly import ReadOnlyAdmin
from streaming.conf import conf
from streaming.models import SessionPanel
from streaming.observe.worker import worker_id
from streaming.runs.endings import EndReason, Status

REFRESH_SECONDS = 15


@dataclass(frozen=True, slots=True)
class EndedCount:
    """How many runs ended for one reason in the window."""

    reason: EndReason
    label: str
    status: Status
    colour: str
    count: int


@dataclass(frozen=True, slots=True)
class Panel:
    """Everything the panel shows, read at `now`."""

    now: datetime
    since: datetime
    workers: list[WorkerLive]
    live: int
    stale: int
    peak_worker: int
    ended: list[EndedCount]
    ended_total: int
    duration: Percentiles
    first_event: Percentiles
    chart: StackedChart


def read_panel(now: datetime) -> Panel:
    """Read the panel's numbers at `now` (at most six queries, whatever the table's size)."""
    since = now - panel_stats.WINDOW
    workers, stale = panel_stats.live_by_worker(now)
    counts = panel_stats.ended_since(since)
    by_reason = counts.by_reason
    ended = [
        EndedCount(
            reason=reason,
            label="completed" if reason is EndReason.NONE else str(reason.label),
            status=reason.status,
            colour=panel_chart.colour(reason),
            count=by_reason.get(reason, 0),
        )
        for reason in EndReason
    ]
    duration, first_event = panel_stats.timings(since, counts)
    return Panel(
        now=now,
        since=since,
        workers=workers,
        live=sum(worker.streams for worker in workers),
        stale=stale,
        peak_worker=max((worker.streams for worker in workers), default=0),
        ended=ended,
        ended_total=counts.total,
        duration=duration,
        first_event=first_event,
        chart=panel_chart.minute_chart(panel_stats.ended_per_minute(since), since=since),
    )


@admin.register(SessionPanel)
class SessionPanelAdmin(ReadOnlyAdmin[SessionPanel]):
    """A page of numbers in place of a list: nothing to add, change or delete."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Render the panel (it refreshes itself every REFRESH_SECONDS)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Live panel",
            "opts": self.model._meta,
            "media": self.media,
            "panel": read_panel(timezone.now()),
            "this_worker": worker_id(),
            "stale_after": conf.stale_after_seconds,
            "refresh_seconds": REFRESH_SECONDS,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/streaming/sessionpanel/panel.html", context)
