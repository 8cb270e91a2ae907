"""The node's config cache: a memory LRU in front of a bounded disk directory.

Configs are content-addressed, so a cached file is checked by re-hashing it on read: a
corrupted or tampered file is dropped and fetched again. Writes are atomic (a temporary
file renamed into place), and the directory is kept under a size bound by evicting the
least recently used files.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from wowlab_core.errors import ConfigInvalid
from wowlab_core.hashing import canonical_json, content_hash, parse_json

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``WOWLAB_CACHE_DIR`` or the platformdirs cache directory of wowlab."""
    return (
        Path(os.environ.get("WOWLAB_CACHE_DIR") or platformdirs.user_cache_dir("wowlab"))
        / "configs"
    )


@dataclass(frozen=True)
class CacheSettings:
    """Where and how much to cache."""

    directory: Path | None = None
    memory_items: int = 64
    disk_bytes: int = 256 * 1024 * 1024


class ConfigCache(Protocol):
    """What the node needs of a config cache (plugins may provide another)."""

    def get(self, config_hash: str) -> Any | None:
        """The config, or None if not cached (or cached but corrupted)."""
        ...

    def put(self, config_hash: str, config: Any) -> None:
        """Store a config fetched from the coordinator.

        Raises:
            ValueError: the config does not hash to ``config_hash``.
        """
        ...


class MemoryDiskCache:
    """The built-in :class:`ConfigCache`: memory LRU + bounded disk directory."""

    def __init__(self, settings: CacheSettings | None = None) -> None:
        self.settings = settings or CacheSettings()
        self.directory = self.settings.directory or default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _path(self, config_hash: str) -> Path:
        if len(config_hash) != 64 or any(c not in "0123456789abcdef" for c in config_hash):
            raise ValueError(f"not a config hash: {config_hash!r}")
        return self.directory / f"{config_hash}.json"

    def get(self, config_hash: str) -> Any | None:
        """Memory first, then disk (re-hashed); None on a miss."""
        with self._lock:
            if config_hash in self._memory:
                self._memory.move_to_end(config_hash)
                self.hits += 1
                return self._memory[config_hash]
        path = self._path(config_hash)
        try:
            text = path.read_text(encoding="utf-8")
            config = parse_json(text)
            ok = content_hash(config) == config_hash
        except (OSError, ValueError, ConfigInvalid):
            ok = False
            config = None
        if not ok:
            if path.exists():
                log.warning("cached config %s is corrupted; fetching it again", config_hash[:12])
                path.unlink(missing_ok=True)
            self.misses += 1
            return None
        os.utime(path)  # recently used: evicted last
        self._remember(config_hash, config)
        self.hits += 1
        return config

    def put(self, config_hash: str, config: Any) -> None:
        """Check the hash, keep in memory, and write the file atomically."""
        if content_hash(config) != config_hash:
            raise ValueError(f"config does not match its hash {config_hash[:12]}...")
        self._remember(config_hash, config)
        path = self._path(config_hash)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(canonical_json(config))
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not write the config cache in %s", self.directory)
            return
        self._evict_disk()

    def _remember(self, config_hash: str, config: Any) -> None:
        with self._lock:
            self._memory[config_hash] = config
            self._memory.move_to_end(config_hash)
            while len(self._memory) > self.settings.memory_items:
                self._memory.popitem(last=False)

    def _evict_disk(self) -> None:
        files = [p for p in self.directory.glob("*.json") if not p.name.startswith(".")]
        sized = []
        total = 0
        for p in files:
            try:
                st = p.stat()
            except OSError:
                continue
            sized.append((st.st_mtime, p, st.st_size))
            total += st.st_size
        for _, p, size in sorted(sized, key=lambda t: t[0]):
            if total <= self.settings.disk_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size


__all__ = ["CacheSettings", "ConfigCache", "MemoryDiskCache", "default_cache_dir"]
