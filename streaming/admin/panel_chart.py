"""The live panel's chart: runs ended per minute over the last hour, stacked by end reason."""

from __future__ import annotations

from datetime import datetime, timedelta

from streaming.admin.charts import StackedChart, stacked_chart
from streaming.runs.endings import EndReason

MINUTES = 60
CHART_WIDTH = 640
CHART_HEIGHT = 140
BAR_GAP = 2
LABEL_EVERY = 10  # minutes

# The cancelled-sessions view colours the stopped reasons; the panel also shows these.
OTHER_COLOURS = {EndReason.NONE: "#16a34a", EndReason.ERROR: "#450a0a"}


def colour(reason: EndReason) -> str:
    """Return the colour of `reason` in the panel (its table swatch and chart segments)."""
    return reason.ending.colour or OTHER_COLOURS.get(reason, "#94a3b8")


def minute_chart(
    counts: dict[tuple[int, EndReason], int], *, since: datetime, minutes: int = MINUTES
) -> StackedChart:
    """Return the chart of `counts` (per minute after `since`, per reason), oldest first.

    Runs that ended in the window's last instant (minute `minutes`) join its last bar.
    """
    bars: list[dict[EndReason, int]] = [{} for _ in range(minutes)]
    for (minute, reason), count in counts.items():
        bar = bars[min(max(minute, 0), minutes - 1)]
        bar[reason] = bar.get(reason, 0) + count

    def at(minute: int) -> str:
        return f"{since + timedelta(minutes=minute):%H:%M}"

    return stacked_chart(
        bars,
        size=(CHART_WIDTH, CHART_HEIGHT),
        gap=BAR_GAP,
        order=list(EndReason),
        colour=colour,
        title=lambda minute, reason, count: f"{at(minute)} UTC: {count} {_label(reason)}",
        labels={minute: at(minute) for minute in range(0, minutes, LABEL_EVERY)},
        centred=False,
        empty="No run ended in the last hour",
        end_label="now",
    )


def _label(reason: EndReason) -> str:
    return "completed" if reason is EndReason.NONE else str(reason.label)
