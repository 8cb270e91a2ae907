"""A report's charts as SVG text: the DPS histogram, bars per ability or aura, timelines.

Pure functions of the report's JSON, with every name escaped, and no style attribute or
script: colours come from classes (``bar``, ``axis``, ``mean``, ``line series-N``) that the
portal's stylesheet and the standalone HTML report's own ``<style>`` both define. The portal
draws its pages with these (``wowlab_portal.web.charts``), so both show the same charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from wowlab_core.report_view import row_label, split_abilities

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 170
LINE_HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 10, 30
#: Series drawn per timeline chart (each has a colour class); more are left to the JSON.
MAX_SERIES = 8


def svg(height: int, body: str, label: str, css_class: str = "chart") -> str:
    """An ``<svg>`` element of the chart width, scaled to its container."""
    return (
        f'<svg class="{css_class}" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} '
        f'{height}" width="100%" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


#: Longest bar label drawn in full; longer names are cut with "…" (the tooltip keeps them whole),
#: so a label never runs under the bars on a phone, where chart text is drawn larger.
LABEL_CHARS = 16


def short(name: str) -> str:
    """``name`` cut to :data:`LABEL_CHARS` characters, with an ellipsis when it was longer."""
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1].rstrip() + "…"


def bars(rows: Sequence[tuple[str, float, str]], label: str, scale_max: float | None) -> str:
    """Horizontal bars: (name, value, text shown after the bar)."""
    if not rows:
        return ""
    top = scale_max or max(v for _, v, _ in rows) or 1.0
    span = WIDTH - LABEL_WIDTH - 90
    parts = []
    for i, (name, value, text) in enumerate(rows):
        y = i * BAR_HEIGHT
        w = max(1.0, span * value / top)
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(short(name))}</text>"
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 3}" width="{w:.1f}" '
            f'height="{BAR_HEIGHT - 6}"><title>{escape(name)}: {escape(text)}</title></rect>'
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + 15}">{escape(text)}</text>'
        )
    return svg(len(rows) * BAR_HEIGHT + 4, "".join(parts), label)


def ability_bars(abilities: Sequence[Mapping[str, Any]]) -> str:
    """DPS per damage ability (cooldowns without damage are left out), largest first."""
    damage, _ = split_abilities(abilities)
    rows = [
        (row_label(a, "ability"), dps, f"{dps:,.0f}")
        for a in damage
        for dps in [float(a.get("dps") or 0)]
    ]
    return bars(rows, "DPS by ability", None)


def aura_uptimes(auras: Sequence[Mapping[str, Any]]) -> str:
    """Uptime of each aura, in percent of the fight."""
    rows = [
        (row_label(a, "aura"), pct, f"{pct:.1f} %")
        for a in auras
        for pct in [float(a.get("uptime_pct") or 0)]
    ]
    return bars(rows, "Aura uptimes", 100.0)


def dps_histogram(bins: Sequence[Mapping[str, Any]], dps: Mapping[str, Any] | None) -> str:
    """How often each DPS came up, with the mean marked."""
    if not bins:
        return ""
    height, base, left = 220, 190, 40
    span = WIDTH - left - 10
    most = max(int(b["count"]) for b in bins) or 1
    lo, hi = float(bins[0]["low"]), float(bins[-1]["high"])
    width = span / len(bins)
    parts = [f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}"/>']
    for i, b in enumerate(bins):
        h = (base - 10) * int(b["count"]) / most
        parts.append(
            f'<rect class="bar" x="{left + i * width:.1f}" y="{base - h:.1f}" '
            f'width="{max(width - 1, 1):.1f}" height="{h:.1f}"><title>{float(b["low"]):,.0f}'
            f" to {float(b['high']):,.0f}: {int(b['count']):,}</title></rect>"
        )
    parts.append(f'<text x="{left}" y="{base + 18}">{lo:,.0f}</text>')
    parts.append(f'<text x="{WIDTH - 10}" y="{base + 18}" text-anchor="end">{hi:,.0f}</text>')
    if dps and hi > lo:
        x = left + span * (float(dps["mean"]) - lo) / (hi - lo)
        parts.append(
            f'<line class="mean" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{base}"/>'
            f'<text x="{x:.1f}" y="{base + 18}" text-anchor="middle">mean '
            f"{float(dps['mean']):,.0f}</text>"
        )
    return svg(height, "".join(parts), "DPS histogram")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    step_s: float,
    label: str,
    y_max: float | None = None,
) -> str:
    """One polyline per series over time (x: seconds, one point per ``step_s`` bucket)."""
    drawn = {k: [float(v) for v in vals] for k, vals in list(series.items())[:MAX_SERIES] if vals}
    if not drawn:
        return ""
    points = max(len(v) for v in drawn.values())
    top = y_max if y_max is not None else max(max(v) for v in drawn.values())
    top = top or 1.0
    span_x, span_y = WIDTH - LEFT - RIGHT, LINE_HEIGHT - TOP - BOTTOM
    base = TOP + span_y

    def xy(i: int, v: float) -> str:
        x = LEFT + span_x * (i / max(points - 1, 1))
        y = base - span_y * max(0.0, min(v, top)) / top
        return f"{x:.1f},{y:.1f}"

    end_s = step_s * points
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{_number(top)}</text>',
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{base + 16}">0 s</text>',
        f'<text x="{WIDTH - RIGHT}" y="{base + 16}" text-anchor="end">{end_s:g} s</text>',
    ]
    legend_rows = -(-len(drawn) // 4) if len(drawn) > 1 else 0
    for n, (name, values) in enumerate(drawn.items()):
        path = " ".join(xy(i, v) for i, v in enumerate(values))
        parts.append(
            f'<polyline class="line series-{n}" points="{path}"><title>{escape(name)}</title>'
            "</polyline>"
        )
        if legend_rows:
            x, y = LEFT + (n % 4) * 146, LINE_HEIGHT + 8 + 14 * (n // 4)
            parts.append(f'<text class="legend series-{n}" x="{x}" y="{y}">{escape(name)}</text>')
    return svg(LINE_HEIGHT + 14 * legend_rows, "".join(parts), label, "chart timeline")


def timeline_charts(report: Mapping[str, Any]) -> dict[str, str]:
    """The charts of a report's ``timelines`` section: ``dps``, ``resource:NAME``, ``auras``."""
    timelines = report.get("timelines") or {}
    charts: dict[str, str] = {}
    dps = timelines.get("dps") or {}
    if dps.get("values"):
        charts["dps"] = line_chart(
            {"DPS": dps["values"]}, step_s=float(dps.get("step_s") or 1), label="DPS over time"
        )
    resources = timelines.get("resources") or {}
    for name, values in (resources.get("series") or {}).items():
        charts[f"resource:{name}"] = line_chart(
            {name: values}, step_s=float(resources.get("step_s") or 1), label=f"{name} over time"
        )
    auras = timelines.get("aura_uptime") or {}
    if auras.get("series"):
        labels = {str(a.get("aura")): row_label(a, "aura") for a in report.get("auras") or []}
        charts["auras"] = line_chart(
            {labels.get(k, k): v for k, v in auras["series"].items()},
            step_s=float(auras.get("step_s") or 1),
            label="Aura uptime over time (%)",
            y_max=100.0,
        )
    return charts


__all__ = [
    "ability_bars",
    "aura_uptimes",
    "bars",
    "dps_histogram",
    "line_chart",
    "svg",
    "timeline_charts",
]
