"""Every text colour of the portal's style sheet against the backgrounds it is drawn on has a
WCAG 2 contrast ratio of at least 4.5:1 (AA for body text), computed from style.css itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wowlab_portal.web import STATIC_DIR

AA = 4.5
CSS = (STATIC_DIR / "style.css").read_text()


def _rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) of every rule, those inside @media blocks included."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    css = re.sub(r"@media[^{]*\{", "", css)  # flatten: a media query only narrows where
    rules = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        for one in selector.split(","):
            rules.append((" ".join(one.split()), declarations))
    return rules


RULES = _rules(CSS)
VARIABLES = {k: v for s, d in RULES if s == ":root" for k, v in d.items() if k.startswith("--")}


def _colour(value: str) -> str | None:
    """The hex colour a declaration's value sets (variables resolved), if it sets one."""
    value = re.sub(r"var\((--[\w-]+)\)", lambda m: VARIABLES[m.group(1)], value)
    found = re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b", value)
    return found.group(0) if found else None


def _luminance(colour: str) -> float:
    hex_digits = colour.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(c * 2 for c in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _declared(selector: str, prop: str) -> str:
    for s, declarations in RULES:
        if s == selector:
            for name in (prop, "background") if prop == "background-color" else (prop,):
                if name in declarations and (colour := _colour(declarations[name])):
                    return colour
    raise AssertionError(f"style.css sets no {prop} for {selector!r}")


#: The surfaces text is drawn on in the page's main area.
SURFACES = {
    "page": _declared("body", "background-color"),
    "card": _declared(".card", "background-color"),
    "table": _declared("table", "background-color"),
    "flash": _declared(".flash", "background-color"),
}
HEADER = _declared("header", "background-color")


def _pairs() -> list[tuple[str, str, str]]:
    """(what, foreground, background) of every text colour the sheet sets."""
    pairs = []
    body_text = _declared("body", "color")
    button_text = _declared("button", "color")
    for selector, declarations in RULES:
        background = declarations.get("background-color") or declarations.get("background", "")
        if (
            "color" not in declarations
            and _colour(background)
            and not selector.startswith(("body", "svg", "header", ":root", "input", "progress"))
        ):
            # A background under inherited text: a button's white, or the body's colour.
            inherited = button_text if selector.startswith("button") else body_text
            pairs.append((f"{selector} (inherited text)", inherited, _colour(background) or ""))
            continue
        if selector == "svg.chart text" and "fill" in declarations:  # painted with fill
            fill = _colour(declarations.get("fill", ""))
            assert fill is not None
            pairs.append((selector, fill, _declared("svg.chart", "background-color")))
            continue
        if "color" not in declarations or selector.startswith((":root", "svg")):
            continue  # chart shapes are not text; the charts' text inherits --fg below
        foreground = _colour(declarations["color"])
        if foreground is None:
            continue
        own = _colour(declarations.get("background-color") or declarations.get("background", ""))
        if own is not None:  # badges, buttons, code blocks: on their own background
            pairs.append((selector, foreground, own))
        elif selector.startswith("header"):
            pairs.append((selector, foreground, HEADER))
        else:  # body text, links, errors, hints: on every surface of the page
            pairs += [(f"{selector} on {name}", foreground, bg) for name, bg in SURFACES.items()]
    return pairs


PAIRS = _pairs()


def test_the_sheet_has_the_text_colours_the_pages_use() -> None:
    """The parser finds what it must judge (a broken parser must not pass by finding none)."""
    found = {what.split(" on ")[0] for what, _, _ in PAIRS}
    for selector in ("body", "a", ".error", ".hint", "button", ".button", ".badge-online",
                     ".badge-running", ".badge-pending", ".badge-failed", ".badge-offline",
                     "header a", "pre.command", "dt", "svg.chart text",
                     "button.danger (inherited text)", ".badge (inherited text)"):  # fmt: skip
        assert selector in found, selector


@pytest.mark.parametrize(("what", "foreground", "background"), PAIRS, ids=[p[0] for p in PAIRS])
def test_text_contrast_is_at_least_aa(what: str, foreground: str, background: str) -> None:
    ratio = contrast(foreground, background)
    assert ratio >= AA, f"{what}: {foreground} on {background} is {ratio:.2f}:1"


def test_the_contrast_formula_matches_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    # The badge of the review: 4.40:1, below AA.
    assert contrast("#237a3b", "#d3f0da") == pytest.approx(4.40, abs=0.01)


def test_the_static_dir_is_the_served_one() -> None:
    assert Path(STATIC_DIR, "style.css").exists()
