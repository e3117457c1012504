"""Trend plots as static, inline SVG, drawn with matplotlib (see the ADR on batch reports).

Text stays text (``svg.fonttype = none``): small files that print sharply and can be searched.
Each figure gets its own id salt so that several SVGs inlined in one page never share an id.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cellauto.errors import RecordError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from cellauto.records.reporting.data import Trend

_SCALES = ((120e6, 1e6, "seconds"), (7_200e6, 60e6, "minutes"), (259_200e6, 3_600e6, "hours"))
_LINE = "#1f4e79"
_LIMIT = "#c0392b"
_SHADE = "#f6d5d1"


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RecordError(
            "the batch report draws its plots with matplotlib, which is not installed; install "
            "it with `pip install cellauto[report]`"
        ) from None
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.family": "sans-serif",
            "font.size": 7,
            "axes.titlesize": 8,
            "axes.linewidth": 0.6,
            "xtick.major.width": 0.5,
            "ytick.major.width": 0.5,
            "path.simplify": False,
        }
    )
    return matplotlib


def _svg(figure: Any, salt: str) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = salt
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def time_scale(span_us: float) -> tuple[float, str]:
    """Microseconds per axis unit, and the unit's name, for a span of `span_us`."""
    for limit, divisor, name in _SCALES:
        if span_us <= limit:
            return divisor, name
    return 86_400e6, "days"


def _figure(height: float) -> tuple[Any, Axes]:
    _matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, height))
    # fixed margins: a constrained layout costs an extra draw per figure
    figure.subplots_adjust(left=0.075, right=0.985, top=1 - 0.28 / height, bottom=0.45 / height)
    return figure, figure.add_subplot()


class TrendPlotter:
    """Draws trends one after another on one reused figure: creating a figure, its axes and
    their ticks costs more than drawing a reduced series, so only the artists are replaced."""

    def __init__(self) -> None:
        self.figure, self.axes = _figure(1.7)
        self.axes.grid(True, linewidth=0.3, color="#cccccc")

    def svg(self, trend: Trend, start_us: int) -> str:
        """One channel's trend against time since `start_us`, its alarm limits shaded, its
        alarms marked."""
        axes = self.axes
        for artist in [*axes.lines, *axes.patches, *axes.texts, *axes.collections]:
            artist.remove()
        first = min(start_us, int(trend.times[0]))
        divisor, unit = time_scale(float(trend.times[-1] - first))
        x = (trend.times - start_us) / divisor
        axes.plot(x, trend.values, color=_LINE, linewidth=0.8)
        left, right = (first - start_us) / divisor, float(x[-1])
        margin = (right - left) * 0.02 or 1.0
        axes.set_xlim(left - margin, right + margin)
        axes.set_ylim(*_shade_limits(axes, trend))
        _mark_alarms(axes, trend, start_us, divisor)
        axes.set_title(f"{trend.device_id} · {trend.channel} [{trend.unit}]", loc="left")
        axes.set_xlabel(f"{unit} since batch start")
        return _svg(self.figure, f"{trend.device_id}/{trend.channel}")


def trend_svg(trend: Trend, start_us: int) -> str:
    """One trend on a figure of its own (see `TrendPlotter` for many)."""
    return TrendPlotter().svg(trend, start_us)


def _shade_limits(axes: Axes, trend: Trend) -> tuple[float, float]:
    """Shade beyond the alarm limits; the y range that shows data and limits."""
    low, high = float(trend.values.min()), float(trend.values.max())
    limits = trend.limits
    bounds = [b for b in ((limits.alarm_low, limits.alarm_high) if limits else ()) if b is not None]
    span_low, span_high = min([low, *bounds]), max([high, *bounds])
    pad = (span_high - span_low) * 0.08 or abs(span_high) * 0.05 or 1.0
    bottom, top = span_low - pad, span_high + pad
    if limits is not None:
        if limits.alarm_low is not None:
            axes.axhspan(bottom, limits.alarm_low, color=_SHADE, linewidth=0)
            axes.axhline(limits.alarm_low, color=_LIMIT, linewidth=0.6, linestyle="--")
        if limits.alarm_high is not None:
            axes.axhspan(limits.alarm_high, top, color=_SHADE, linewidth=0)
            axes.axhline(limits.alarm_high, color=_LIMIT, linewidth=0.6, linestyle="--")
    return bottom, top


def _mark_alarms(axes: Axes, trend: Trend, start_us: int, divisor: float) -> None:
    from datetime import UTC, datetime

    for time, code in trend.alarms:
        at = datetime.strptime(time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        x = (at.timestamp() * 1e6 - start_us) / divisor
        axes.axvline(x, color=_LIMIT, linewidth=0.8, linestyle=":")
        axes.annotate(
            f"▲ {code}",
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=6,
            color=_LIMIT,
            va="top",
        )


def overlay_svg(
    title: str,
    unit: str,
    series: Sequence[tuple[str, npt.NDArray[np.float64], npt.NDArray[np.float64]]],
) -> str:
    """Several batches' curves of one channel on one axis: (label, hours, values) each."""
    figure, axes = _figure(2.4)
    for label, hours, values in series:
        axes.plot(hours, values, linewidth=0.9, label=label)
    axes.set_title(f"{title} [{unit}]", loc="left")
    axes.set_xlabel("hours since batch start")
    axes.grid(True, linewidth=0.3, color="#cccccc")
    if series:
        axes.legend(fontsize=6, loc="best", frameon=False)
    return _svg(figure, f"overlay/{title}")
