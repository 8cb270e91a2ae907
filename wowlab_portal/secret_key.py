"""The key that signs session cookies: from settings, else made once and kept on disk."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from wowlab_core.db import data_dir
from wowlab_core.private_files import write_private_text

log = logging.getLogger(__name__)
FILE_NAME = "portal_secret_key"


def resolve_secret_key(configured: str | None, directory: Path | None = None) -> str:
    """``configured``, else the key stored in the data directory (made, mode 0600, if absent).

    A key kept on disk means sessions survive a restart of the portal.
    """
    if configured:
        return configured
    path = (directory or data_dir()) / FILE_NAME
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= 32:
        return existing
    key = secrets.token_urlsafe(48)
    write_private_text(path, key + "\n")
    log.info("made a new session secret key in %s", path)
    return key


__all__ = ["resolve_secret_key"]
