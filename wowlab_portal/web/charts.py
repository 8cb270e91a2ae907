"""Report charts as inline SVG, drawn on the server (no JavaScript needed to see them)."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 170


def _svg(height: int, body: str, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} '
        f'{height}" width="100%" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _bars(rows: list[tuple[str, float, str]], label: str, scale_max: float | None) -> Markup:
    """Horizontal bars: (name, value, text shown after the bar)."""
    if not rows:
        return Markup("")
    top = scale_max or max(v for _, v, _ in rows) or 1.0
    span = WIDTH - LABEL_WIDTH - 90
    parts = []
    for i, (name, value, text) in enumerate(rows):
        y = i * BAR_HEIGHT
        w = max(1.0, span * value / top)
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 3}" width="{w:.1f}" '
            f'height="{BAR_HEIGHT - 6}"><title>{escape(name)}: {escape(text)}</title></rect>'
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + 15}">{escape(text)}</text>'
        )
    return _svg(len(rows) * BAR_HEIGHT + 4, "".join(parts), label)


def row_name(row: dict[str, Any], key: str) -> str:
    """A report row's name: engines name it by what it is (``ability``, ``aura``) or ``name``."""
    return str(row.get(key) or row.get("name") or "?")


def ability_bars(abilities: list[dict[str, Any]]) -> Markup:
    """DPS per ability, largest first."""
    rows = [
        (row_name(a, "ability"), float(a.get("dps") or 0), f"{float(a.get('dps') or 0):,.0f}")
        for a in abilities
    ]
    return _bars(rows, "DPS by ability", None)


def aura_uptimes(auras: list[dict[str, Any]]) -> Markup:
    """Uptime of each aura, in percent of the fight."""
    rows = [
        (row_name(a, "aura"), pct, f"{pct:.1f} %")
        for a in auras
        for pct in [float(a.get("uptime_pct") or 0)]
    ]
    return _bars(rows, "Aura uptimes", 100.0)


def dps_histogram(bins: list[dict[str, Any]], dps: dict[str, Any] | None) -> Markup:
    """How often each DPS came up, with the mean marked."""
    if not bins:
        return Markup("")
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
            f" to {float(b['high']):,.0f}: {int(b['count'])}</title></rect>"
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
    return _svg(height, "".join(parts), "DPS histogram")


__all__ = ["ability_bars", "aura_uptimes", "dps_histogram"]
