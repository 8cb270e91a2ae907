"""Line charts of a report's timelines as inline SVG (no script, no inline style).

Colours come from the ``series-N`` classes of ``static/style.css``, so a strict
content-security policy (no inline styles) still shows them. The drawing is the core's
(:mod:`wowlab_core.report_svg`), shared with the standalone HTML report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from wowlab_core import report_svg

MAX_SERIES = report_svg.MAX_SERIES


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    step_s: float,
    label: str,
    y_max: float | None = None,
) -> Markup:
    """One polyline per series over time (x: seconds, one point per ``step_s`` bucket)."""
    chart = report_svg.line_chart(series, step_s=step_s, label=label, y_max=y_max)
    return Markup(chart)


def timeline_charts(report: Mapping[str, Any]) -> dict[str, Markup]:
    """The charts of a report's ``timelines`` section: dps, resources, aura uptime."""
    return {k: Markup(v) for k, v in report_svg.timeline_charts(report).items()}


__all__ = ["line_chart", "timeline_charts"]
