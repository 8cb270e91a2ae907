"""Report charts as inline SVG, drawn on the server (no JavaScript needed to see them).

The drawing is the core's (:mod:`wowlab_core.report_svg`), shared with the standalone HTML
report and escaped there; this marks it safe for the templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from wowlab_core import report_svg
from wowlab_core.report_view import row_label


def bars(rows: list[tuple[str, float, str]], label: str, scale_max: float | None) -> Markup:
    """Horizontal bars: (name, value, text shown after the bar), largest scale first."""
    return Markup(report_svg.bars(rows, label, scale_max))  # escaped by report_svg


def row_name(row: Mapping[str, Any], key: str) -> str:
    """A report row's name for people: its label, else its ``key`` or ``name`` humanised."""
    return row_label(row, key)


def ability_bars(abilities: list[dict[str, Any]]) -> Markup:
    """DPS per damage ability, largest first."""
    return Markup(report_svg.ability_bars(abilities))


def aura_uptimes(auras: list[dict[str, Any]]) -> Markup:
    """Uptime of each aura, in percent of the fight."""
    return Markup(report_svg.aura_uptimes(auras))


def dps_histogram(bins: list[dict[str, Any]], dps: dict[str, Any] | None) -> Markup:
    """How often each DPS came up, with the mean marked."""
    return Markup(report_svg.dps_histogram(bins, dps))


__all__ = ["ability_bars", "aura_uptimes", "bars", "dps_histogram", "row_name"]
