"""One process per node identity: a lock beside the node's settings file.

The CLI (``wowlab node run``) and the desktop app share a node's settings file, so they
share its identity (id and token). Two processes running one identity would fight over
its leases (each heartbeat hands back the leases the other holds), so each takes this
lock first. The operating system drops the lock when its process ends, crash or not: a
lock is never left behind. The lock file names the process that holds it, so the second
one can say who is in the way.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from wowlab_core.errors import WowlabError

#: Where in the lock file the lock byte is (Windows locks byte ranges; the holder's
#: description is written before it, where a reader is not blocked).
_LOCK_OFFSET = 4096


class NodeIdentityInUse(WowlabError):
    """Another process runs this node identity already."""

    status_code = 409


def lock_path(settings_path: Path) -> Path:
    """The lock file of the node whose settings are at ``settings_path``."""
    return settings_path.with_name(settings_path.name + ".lock")


class NodeLock:
    """An exclusive, non-blocking lock on a node identity, held while a process runs it.

    ``program`` says who holds it (``wowlab node run``, ``wowlab gui``) in the message the
    next process shows.
    """

    def __init__(self, settings_path: Path, *, program: str) -> None:
        self.settings_path = settings_path
        self.path = lock_path(settings_path)
        self.program = program
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`NodeIdentityInUse` naming who holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise NodeIdentityInUse(_in_use_message(self.settings_path, holder))
        self._fd = fd
        description = json.dumps({"pid": os.getpid(), "program": self.program}).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, description.ljust(256))

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b" " * 256)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _in_use_message(settings_path: Path, holder: dict[str, Any]) -> str:
    who = str(holder.get("program") or "another wowlab process")
    pid = holder.get("pid")
    running = f"{who} (pid {pid})" if isinstance(pid, int) else who
    return (
        f"this node is already running in {running}; stop it first, or run another node "
        f"with its own settings (--profile NAME); settings: {settings_path}"
    )


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 256).decode("utf-8", "replace").strip() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


__all__ = ["NodeIdentityInUse", "NodeLock", "lock_path"]
