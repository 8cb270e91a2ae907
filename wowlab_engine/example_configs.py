"""Example configs shipped with the engine (``wowlab_engine/examples/*.json``)."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent / "examples"


def example_paths() -> dict[str, Path]:
    """Example name (file stem) -> path, sorted by name."""
    return {p.stem: p for p in sorted(EXAMPLES_DIR.glob("*.json"))}


def example_description(path: Path) -> str:
    """The one-line ``description`` of an example config."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("description", "")).splitlines()[0] if isinstance(data, dict) else ""
