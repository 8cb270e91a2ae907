"""The desktop app's settings: kept in the node's own settings file (the ``gui`` section of
:class:`~wowlab_core.node_settings.NodeSettings`), beside the identity the CLI uses.

Pure functions here (URL checks, the CPU limit's worker count) are what the views and the
tests call; nothing in this module needs Qt.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from wowlab_core.node_settings import NodeSettings

#: The World of Warcraft client's process names (retail, classic, test and beta realms,
#: on Windows, macOS and under Wine/Proton on Linux): the node pauses while one runs.
WOW_PROCESS_NAMES: tuple[str, ...] = (
    "Wow.exe",
    "WowClassic.exe",
    "WowT.exe",
    "WowB.exe",
    "WowClassicT.exe",
    "WowClassicB.exe",
    "World of Warcraft",
    "World of Warcraft Classic",
)

#: URL schemes each built-in transport accepts (a third-party transport's URL is not checked).
URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "http": ("http", "https"),
    "mqtt": ("mqtt", "mqtts", "tcp", "ssl", "ws", "wss"),
    "supabase": ("http", "https"),
    "local": ("sqlite", "postgresql", "postgresql+psycopg", "postgres"),
}


@dataclass
class GuiSettings:
    """What the desktop app adds to a node's settings."""

    #: The portal's address for the claim link, when the transport's URL is not the portal.
    portal_url: str = ""
    #: Share of this machine's cores the node may use (it sets the worker count).
    cpu_limit_percent: int = 100
    #: Paused by the volunteer (kept across restarts, as BOINC Manager does).
    paused: bool = False
    pause_on_programs: bool = True
    pause_programs: list[str] = field(default_factory=lambda: list(WOW_PROCESS_NAMES))
    #: Run only after this many minutes without keyboard or mouse input (0: always run).
    idle_minutes: int = 0
    start_at_login: bool = False
    close_to_tray: bool = True
    chunks_total: int = 0
    chunks_today: int = 0
    today: str = ""

    @classmethod
    def of(cls, settings: NodeSettings) -> GuiSettings:
        """The app's settings stored in ``settings`` (defaults for what is missing or wrong)."""
        known = {f.name: f for f in fields(cls)}
        default = cls()
        values: dict[str, Any] = {}
        for key, value in settings.gui.items():
            if key in known and isinstance(value, type(getattr(default, key))):
                values[key] = value
        return cls(**values)

    def store(self, settings: NodeSettings) -> None:
        """Put these settings into ``settings`` (saved with it)."""
        settings.gui = asdict(self)

    def count_chunk(self, today: date | None = None) -> None:
        """One more chunk completed (today's count starts again each day)."""
        day = (today or date.today()).isoformat()
        if self.today != day:
            self.today, self.chunks_today = day, 0
        self.chunks_today += 1
        self.chunks_total += 1

    def completed_today(self, today: date | None = None) -> int:
        """Chunks completed today."""
        return self.chunks_today if self.today == (today or date.today()).isoformat() else 0


def cpu_count() -> int:
    """Logical cores of this machine."""
    return os.cpu_count() or 1


def workers_for(*, cores: int, cpu_limit_percent: int, max_parallel: int) -> int:
    """How many chunks run at once under a CPU limit: the limit's share of the cores
    (rounded down, at least one), and never more than ``max_parallel``."""
    share = math.floor(cores * max(1, min(cpu_limit_percent, 100)) / 100)
    return max(1, min(max_parallel, share))


def check_url(transport: str, url: str) -> str | None:
    """What is wrong with ``url`` for ``transport`` (None: nothing)."""
    url = url.strip()
    if not url:
        return "enter the address of your wowlab portal or broker"
    schemes = URL_SCHEMES.get(transport)
    if schemes is None:
        return None  # a third-party transport checks its own URL
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        wanted = ", ".join(f"{s}://" for s in schemes[:2])
        return f"the {transport} transport needs an address starting with {wanted}"
    if transport != "local" and not parts.hostname:
        return "the address has no host name"
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "the port must be a number from 1 to 65535"
    return None


def claim_page_url(*, transport: str, url: str, portal_url: str, code: str) -> str | None:
    """The portal page where the node's owner enters ``code``, with the code filled in
    (None: the portal's address is not known)."""
    base = portal_url.strip() or (url.strip() if transport == "http" else "")
    if not base:
        return None
    return f"{base.rstrip('/')}/nodes/claim?code={code}"


__all__ = [
    "URL_SCHEMES",
    "WOW_PROCESS_NAMES",
    "GuiSettings",
    "check_url",
    "claim_page_url",
    "cpu_count",
    "workers_for",
]
