"""The cancelled sessions' summary: counts per end reason and a chart by day (no JS, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from streaming.models import CancelledSession
from streaming.runs.endings import STOPPED_REASONS, EndReason

CHART_DAYS = 14
CHART_WIDTH = 560
CHART_HEIGHT = 120
AXIS_HEIGHT = 18
TOP_MARGIN = 6
Y_GUTTER = 28
BAR_GAP = 6


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How many sessions ended for one reason in the last day and week."""

    reason: EndReason
    colour: str
    last_day: int
    last_week: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One reason's part of one day's bar, in SVG units."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class DayLabel:
    """A label under the chart's x axis."""

    x: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A stacked bar chart of cancellations per day, ready for the template's SVG."""

    width: int
    height: int
    plot_top: int
    plot_left: int
    plot_height: int
    segments: list[Segment]
    labels: list[DayLabel]
    peak: int
    days: int


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


def daily_chart(now: datetime, *, days: int = CHART_DAYS) -> Chart:
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
    totals = [sum(counts.get((day, reason), 0) for reason in STOPPED_REASONS) for day in day_list]
    peak = max(totals, default=0)
    plot_height = CHART_HEIGHT - AXIS_HEIGHT
    usable = plot_height - TOP_MARGIN
    slot = (CHART_WIDTH - Y_GUTTER) / days
    segments: list[Segment] = []
    for index, day in enumerate(day_list):
        top = float(plot_height)
        for reason in STOPPED_REASONS:
            count = counts.get((day, reason), 0)
            if not count:
                continue
            height = usable * count / peak
            top -= height
            segments.append(
                Segment(
                    x=round(Y_GUTTER + index * slot + BAR_GAP / 2, 2),
                    y=round(top, 2),
                    width=round(slot - BAR_GAP, 2),
                    height=round(height, 2),
                    colour=_colour(reason),
                    title=f"{day:%b %d}: {count} {reason.label}",
                )
            )
    labels = [
        DayLabel(x=round(Y_GUTTER + index * slot + slot / 2, 2), text=f"{day:%b %d}")
        for index, day in enumerate(day_list)
        if index % 2 == (days - 1) % 2
    ]
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        plot_top=TOP_MARGIN,
        plot_left=Y_GUTTER,
        plot_height=plot_height,
        segments=segments,
        labels=labels,
        peak=peak,
        days=days,
    )


def _colour(reason: EndReason) -> str:
    return reason.ending.colour or ""
