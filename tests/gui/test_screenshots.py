"""Every view rendered offscreen by ``wowlab gui --screenshot`` (a real process), at a
desktop and a small size, into tests/artifacts/gui/: the right size and not blank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

VIEWS = ("setup", "claim", "dashboard", "settings", "logs")
SIZES = ((1280, 800), (400, 600))
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "gui"


def distinct_colors(image: QImage, step: int = 2) -> tuple[int, float]:
    """Colours in a sample of the pixels, and the share of dark ones (text, lines)."""
    colors: set[int] = set()
    dark = total = 0
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            rgb = image.pixel(x, y) & 0xFFFFFF
            colors.add(rgb)
            total += 1
            r, g, b = rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF
            if r + g + b < 300:
                dark += 1
    return len(colors), dark / total


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", VIEWS)
def test_view_renders_offscreen(view: str, size: tuple[int, int]) -> None:
    width, height = size
    path = ARTIFACTS / f"{view}-{width}x{height}.png"
    path.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "gui", "--screenshot", str(path), "--view", view,
         "--size", f"{width}x{height}"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {path} ({view}, {width}x{height})"
    image = QImage(str(path))
    assert (image.width(), image.height()) == size
    colors, dark = distinct_colors(image)
    assert colors > 20, f"{view} looks blank: {colors} colours"
    assert dark > 0.001, f"{view} has almost no text: {dark:.2%} dark pixels"


def test_screenshot_options_are_checked_in_one_line(tmp_path: Path) -> None:
    for args, message in [
        (["--screenshot", str(tmp_path / "x.png")], "--screenshot needs --view"),
        (["--screenshot", str(tmp_path / "x.png"), "--view", "nope"], "'nope' is not one of"),
        (["--screenshot", str(tmp_path / "x.png"), "--view", "claim", "--size", "big"],
         "size must look like 1280x800"),
        (["--view", "claim"], "--view goes with --screenshot"),
    ]:  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "wowlab_core", "gui", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, args
        assert message in done.stderr, done.stderr
    assert not (tmp_path / "x.png").exists()
