"""Files holding secrets (node tokens, API tokens, session keys): written atomically and
readable by their owner only, from the first byte on."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, with mode 0600.

    The temporary file gets its mode before anything is written, so the secret is never
    readable by others, not even for a moment; a crash leaves the old file in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


__all__ = ["write_private_text"]
