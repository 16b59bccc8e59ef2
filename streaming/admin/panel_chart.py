"""The live panel's chart: runs ended per minute over the last hour, stacked by end reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from streaming.admin.summary import DayLabel, Segment
from streaming.runs.endings import EndReason

MINUTES = 60
CHART_WIDTH = 640
CHART_HEIGHT = 140
AXIS_HEIGHT = 18
TOP_MARGIN = 6
Y_GUTTER = 28
BAR_GAP = 2
LABEL_EVERY = 10  # minutes

# The cancelled-sessions view colours the stopped reasons; the panel also shows these.
OTHER_COLOURS = {EndReason.NONE: "#16a34a", EndReason.ERROR: "#450a0a"}


def colour(reason: EndReason) -> str:
    """Return the colour of `reason` in the panel (its table swatch and chart segments)."""
    return reason.ending.colour or OTHER_COLOURS.get(reason, "#94a3b8")


@dataclass(frozen=True, slots=True)
class MinuteChart:
    """A stacked bar per minute, ready for the template's SVG."""

    width: int
    height: int
    plot_top: int
    plot_left: int
    plot_height: int
    segments: list[Segment]
    labels: list[DayLabel]
    peak: int
    minutes: int


def minute_chart(
    counts: dict[tuple[int, EndReason], int], *, since: datetime, minutes: int = MINUTES
) -> MinuteChart:
    """Return the chart of `counts` (per minute after `since`, per reason), oldest first.

    Runs that ended in the window's last instant (minute `minutes`) join its last bar.
    """
    per_minute: dict[int, dict[EndReason, int]] = {}
    for (minute, reason), count in counts.items():
        slot = min(max(minute, 0), minutes - 1)
        bar = per_minute.setdefault(slot, {})
        bar[reason] = bar.get(reason, 0) + count
    peak = max((sum(bar.values()) for bar in per_minute.values()), default=0)
    plot_height = CHART_HEIGHT - AXIS_HEIGHT
    usable = plot_height - TOP_MARGIN
    slot_width = (CHART_WIDTH - Y_GUTTER) / minutes
    segments: list[Segment] = []
    for minute in sorted(per_minute):
        top = float(plot_height)
        at = since + timedelta(minutes=minute)
        for reason in EndReason:
            count = per_minute[minute].get(reason, 0)
            if not count:
                continue
            height = usable * count / peak
            top -= height
            segments.append(
                Segment(
                    x=round(Y_GUTTER + minute * slot_width + BAR_GAP / 2, 2),
                    y=round(top, 2),
                    width=round(slot_width - BAR_GAP, 2),
                    height=round(height, 2),
                    colour=colour(reason),
                    title=f"{at:%H:%M} UTC: {count} {_label(reason)}",
                )
            )
    labels = [
        DayLabel(
            x=round(Y_GUTTER + minute * slot_width, 2),
            text=f"{since + timedelta(minutes=minute):%H:%M}",
        )
        for minute in range(0, minutes, LABEL_EVERY)
    ]
    return MinuteChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        plot_top=TOP_MARGIN,
        plot_left=Y_GUTTER,
        plot_height=plot_height,
        segments=segments,
        labels=labels,
        peak=peak,
        minutes=minutes,
    )


def _label(reason: EndReason) -> str:
    return "completed" if reason is EndReason.NONE else str(reason.label)
