"""wowlab core SDK: plugins, data model, scheduler, coordinator, node runtime and CLI."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("wowlab")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
