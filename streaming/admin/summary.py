"""The cancelled sessions' summary: counts per end reason and a chart by day (no JS, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from streaming.admin.charts import StackedChart, stacked_chart
from streaming.models import CancelledSession
from streaming.runs.endings import STOPPED_REASONS, EndReason

CHART_DAYS = 14
CHART_WIDTH = 560
CHART_HEIGHT = 120
BAR_GAP = 6


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How many sessions ended for one reason in the last day and week."""

    reason: EndReason
    colour: str
    last_day: int
    last_week: int


def reason_counts(now: datetime) -> list[ReasonCount]:
    """Return per end reason how many sessions started in the last 24 hours and 7 days."""
    rows = (
        CancelledSession.objects.filter(started_at__gte=now - timedelta(days=7))
        .order_by()
        .values("end_reason")
        .annotate(
            last_week=Count("pk"),
            last_day=Count("pk", filter=Q(started_at__gte=now - timedelta(hours=24))),
        )
    )
    found = {row["end_reason"]: row for row in rows}
    return [
        ReasonCount(
            reason=reason,
            colour=_colour(reason),
            last_day=found.get(reason, {}).get("last_day", 0),
            last_week=found.get(reason, {}).get("last_week", 0),
        )
        for reason in STOPPED_REASONS
    ]


def daily_chart(now: datetime, *, days: int = CHART_DAYS) -> StackedChart:
    """Return a stacked bar per day (UTC) of the last `days` days, today last."""
    first_day = now.date() - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    rows = (
        CancelledSession.objects.filter(started_at__gte=start)
        .annotate(day=TruncDate("started_at"))
        .order_by()
        .values("day", "end_reason")
        .annotate(count=Count("pk"))
    )
    counts: dict[tuple[date, str], int] = {
        (row["day"], row["end_reason"]): row["count"] for row in rows
    }
    day_list = [first_day + timedelta(days=n) for n in range(days)]
    bars = [
        {reason: counts.get((day, reason), 0) for reason in STOPPED_REASONS} for day in day_list
    ]
    return stacked_chart(
        bars,
        size=(CHART_WIDTH, CHART_HEIGHT),
        gap=BAR_GAP,
        order=STOPPED_REASONS,
        colour=_colour,
        title=lambda i, reason, count: f"{day_list[i]:%b %d}: {count} {reason.label}",
        # Every other day, the last one included.
        labels={i: f"{day:%b %d}" for i, day in enumerate(day_list) if i % 2 == (days - 1) % 2},
        centred=True,
        empty=f"None in the last {days} days",
    )


def _colour(reason: EndReason) -> str:
    return reason.ending.colour or ""
