"""wowlab core SDK: plugins, data model, scheduler, coordinator, node runtime and CLI."""

from __future__ import annotations

import logging
from typing import Any

# A library does not print through logging's last-resort handler: before the CLI or an
# application configures logging, wowlab's records go nowhere (``wowlab plugins`` shows
# what a broken plugin would have warned about).
logging.getLogger("wowlab_core").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The version is read from the installed metadata on first use, not at import: the
    # ``wowlab`` command starts by importing this package, and must be cheap to interrupt.
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("wowlab")
        except metadata.PackageNotFoundError:  # running from a source tree without install
            version = "0.0.0"
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__"]
