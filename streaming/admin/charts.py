"""Stacked bar charts of ended runs by reason, drawn as SVG on the server (nothing fetched).

The cancelled-sessions view (a bar per day) and the live panel (a bar per minute) both draw
one with `stacked_chart`, through the template `admin/streaming/stacked_chart.html`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from streaming.runs.endings import EndReason

AXIS_HEIGHT = 18
TOP_MARGIN = 6
Y_GUTTER = 28

Bar = Mapping[EndReason, int]


@dataclass(frozen=True, slots=True)
class Segment:
    """One reason's part of one bar, in SVG units."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class AxisLabel:
    """A label under the chart's x axis."""

    x: float
    text: str


@dataclass(frozen=True, slots=True)
class StackedChart:
    """A stacked bar chart, ready for the template's SVG."""

    width: int
    height: int
    plot_top: int
    plot_left: int
    plot_height: int
    segments: list[Segment]
    labels: list[AxisLabel]
    peak: int
    bars: int  # how many bars wide the chart is (days, minutes)
    empty: str  # said when every bar is empty
    end_label: str = ""  # said at the right end of the x axis ("now")


def stacked_chart(
    bars: Sequence[Bar],
    *,
    size: tuple[int, int],
    gap: int,
    order: Sequence[EndReason],
    colour: Callable[[EndReason], str],
    title: Callable[[int, EndReason, int], str],
    labels: Mapping[int, str],
    centred: bool,
    empty: str,
    end_label: str = "",
) -> StackedChart:
    """Return the chart of `bars` (oldest first), each stacked in `order`.

    `title(index, reason, count)` is a segment's hover text; `labels` names some bars by
    index, under their middle (`centred`) or their left edge.
    """
    width, height = size
    peak = max((sum(bar.values()) for bar in bars), default=0)
    plot_height = height - AXIS_HEIGHT
    usable = plot_height - TOP_MARGIN
    slot = (width - Y_GUTTER) / max(len(bars), 1)
    segments: list[Segment] = []
    for index, bar in enumerate(bars):
        top = float(plot_height)
        for reason in order:
            count = bar.get(reason, 0)
            if not count:
                continue
            part = usable * count / peak
            top -= part
            segments.append(
                Segment(
                    x=round(Y_GUTTER + index * slot + gap / 2, 2),
                    y=round(top, 2),
                    width=round(slot - gap, 2),
                    height=round(part, 2),
                    colour=colour(reason),
                    title=title(index, reason, count),
                )
            )
    offset = slot / 2 if centred else 0
    under = [AxisLabel(round(Y_GUTTER + i * slot + offset, 2), text) for i, text in labels.items()]
    return StackedChart(
        width=width,
        height=height,
        plot_top=TOP_MARGIN,
        plot_left=Y_GUTTER,
        plot_height=plot_height,
        segments=segments,
        labels=under,
        peak=peak,
        bars=len(bars),
        empty=empty,
        end_label=end_label,
    )
