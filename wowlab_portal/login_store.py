"""The CLI's login to a portal: its URL and a personal API token, in a file only its user
can read (mode 0600) in the data directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wowlab_core.db import data_dir
from wowlab_core.errors import AuthenticationFailed
from wowlab_core.private_files import write_private_text

FILE_NAME = "portal_login.json"


def default_login_path() -> Path:
    """``<data dir>/portal_login.json`` (``WOWLAB_DATA_DIR`` moves it)."""
    return data_dir() / FILE_NAME


@dataclass(frozen=True)
class PortalLogin:
    """Where the CLI sends its requests, and as whom."""

    url: str
    token: str
    username: str

    def save(self, path: Path | None = None) -> Path:
        """Write atomically, readable and writable by the owner only; returns the path."""
        path = path or default_login_path()
        write_private_text(path, json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> PortalLogin | None:
        """The stored login, or None if there is none (or it is unreadable)."""
        path = path or default_login_path()
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                url=str(data["url"]), token=str(data["token"]), username=str(data["username"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None


def require_login(path: Path | None = None) -> PortalLogin:
    """The stored login, else :class:`AuthenticationFailed` saying how to make one."""
    login = PortalLogin.load(path)
    if login is None:
        raise AuthenticationFailed(
            "not logged in to a portal: run 'wowlab login URL' (or 'wowlab up' for a local one)"
        )
    return login


__all__ = ["PortalLogin", "default_login_path", "require_login"]
