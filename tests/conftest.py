"""Shared test setup: the wowlab pytest plugin (``wowlab_core.testing.plugin``) is loaded
through its ``pytest11`` entry point; this file only adds repository-wide settings."""

from __future__ import annotations

import os

# Tests never touch the user's real data or cache directories.
os.environ.setdefault(
    "WOWLAB_DATA_DIR", os.path.join(os.path.dirname(__file__), "artifacts", "data")
)
os.environ.setdefault(
    "WOWLAB_CACHE_DIR", os.path.join(os.path.dirname(__file__), "artifacts", "cache")
)
