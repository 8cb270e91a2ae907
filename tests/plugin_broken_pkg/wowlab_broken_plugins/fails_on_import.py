"""A plugin with a bug that raises as soon as it is imported."""

from __future__ import annotations

raise RuntimeError("this plugin is broken on purpose")
