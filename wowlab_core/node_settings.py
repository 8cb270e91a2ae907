"""A node's persisted settings and secret, in a file only its user can read (mode 0600)."""

from __future__ import annotations

import json
import os
import platform
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from wowlab_core.db import data_dir
from wowlab_core.private_files import write_private_text
from wowlab_core.protocol import NodeCredentials


def default_settings_path(profile: str = "default") -> Path:
    """``<data dir>/nodes/<profile>.json``."""
    return data_dir() / "nodes" / f"{profile}.json"


def default_node_name() -> str:
    """The machine's host name."""
    return (socket.gethostname() or "wowlab-node")[:100]


def platform_string() -> str:
    """``Linux x86_64 (CPython 3.11.7)`` and the like."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.system()} {platform.machine()} ({python})"


@dataclass
class NodeSettings:
    """What a node remembers between runs."""

    name: str = field(default_factory=default_node_name)
    max_parallel: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    transport: str = "local"
    url: str = ""
    node_id: int | None = None
    token: str | None = None
    #: The owner's cap on one chunk's wall time (a lease's budget applies when smaller).
    max_chunk_seconds: float = 900.0
    #: Running chunks are stopped while the node process uses more memory than this.
    memory_cap_mb: float | None = 2048.0
    #: The desktop app's own settings (CPU limit, pause rules ...); the CLI keeps them as
    #: they are, so both share one file and one identity.
    gui: dict[str, Any] = field(default_factory=dict)

    @property
    def credentials(self) -> NodeCredentials | None:
        """The node's credentials, once registered."""
        if self.node_id is None or self.token is None:
            return None
        return NodeCredentials(node_id=self.node_id, token=self.token)

    def save(self, path: Path) -> None:
        """Write atomically, readable and writable by the owner only."""
        write_private_text(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> NodeSettings | None:
        """Read settings, or None if the file does not exist."""
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        known = {f.name for f in fields(cls)}
        settings = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(settings.gui, dict):
            settings.gui = {}
        return settings


__all__ = ["NodeSettings", "default_node_name", "default_settings_path", "platform_string"]
