"""The node's config cache (``wowlab_core.cache.MemoryDiskCache``)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from wowlab_core import cache as cache_module
from wowlab_core.cache import CacheSettings, MemoryDiskCache, default_cache_dir
from wowlab_core.hashing import canonical_json, content_hash


def config(n: int, padding: int = 0) -> dict[str, Any]:
    return {"actor": {"name": f"mage-{n}", "haste": n}, "pad": "x" * padding}


def make_cache(directory: Path, **kwargs: Any) -> MemoryDiskCache:
    return MemoryDiskCache(CacheSettings(directory=directory, **kwargs))


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_put_then_get_round_trip(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    value = config(1)
    h = content_hash(value)
    assert cache.get(h) is None
    assert cache.misses == 1
    cache.put(h, value)
    assert cache.get(h) == value
    assert cache.hits == 1
    path = tmp_path / f"{h}.json"
    assert path.read_text(encoding="utf-8") == canonical_json(value)
    assert files(tmp_path) == {f"{h}.json"}


def test_disk_survives_a_new_instance(tmp_path: Path) -> None:
    value = {"name": "Jaïna 日本", "spells": [1, 2, 3]}
    h = content_hash(value)
    make_cache(tmp_path).put(h, value)
    fresh = make_cache(tmp_path)
    assert fresh.get(h) == value
    assert (fresh.hits, fresh.misses) == (1, 0)


def test_memory_is_an_lru_of_bounded_size(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, memory_items=2)
    a, b, c = config(1), config(2), config(3)
    ha, hb, hc = (content_hash(v) for v in (a, b, c))
    cache.put(ha, a)
    cache.put(hb, b)
    assert cache.get(ha) == a  # a is now more recent than b
    cache.put(hc, c)
    for p in tmp_path.iterdir():  # only what is in memory can still be served
        p.unlink()
    assert cache.get(ha) == a
    assert cache.get(hc) == c
    assert cache.get(hb) is None


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: raw.replace(b"mage", b"magE"),  # still valid JSON, wrong content
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: b"",
        lambda raw: b"\xff\xfe" + raw,  # not UTF-8
        lambda raw: b'{"actor": NaN}',  # parses with json.loads, cannot be hashed
        lambda raw: b"[" * 50_000 + b"]" * 50_000,
    ],
    ids=["edited", "truncated", "empty", "bad-utf8", "nan", "deep"],
)
def test_corrupted_file_is_dropped(tmp_path: Path, corrupt: Any) -> None:
    value = config(7)
    h = content_hash(value)
    make_cache(tmp_path).put(h, value)
    path = tmp_path / f"{h}.json"
    path.write_bytes(corrupt(path.read_bytes()))
    fresh = make_cache(tmp_path)
    assert fresh.get(h) is None
    assert not path.exists()
    assert (fresh.hits, fresh.misses) == (0, 1)
    fresh.put(h, value)  # fetched again
    assert make_cache(tmp_path).get(h) == value


def test_put_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    wrong = content_hash(config(1))
    with pytest.raises(ValueError, match="does not match its hash"):
        cache.put(wrong, config(2))
    assert files(tmp_path) == set()
    assert cache.get(wrong) is None  # not remembered in memory either


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "../" + "a" * 61,
        "/etc/passwd",
        "",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper-case hex is not the stored form
        "g" * 64,
        "a" * 63 + "/",
    ],
)
def test_bad_hash_strings_are_refused(tmp_path: Path, bad: str) -> None:
    directory = tmp_path / "cache"
    cache = make_cache(directory)
    with pytest.raises(ValueError):
        cache.get(bad)
    with pytest.raises(ValueError):
        cache.put(bad, config(1))
    assert files(directory) == set()
    assert files(tmp_path) == {"cache"}


def _age(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_disk_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    a, b, c = config(1, 1000), config(2, 1000), config(3, 1000)
    ha, hb, hc = (content_hash(v) for v in (a, b, c))
    size = len(canonical_json(a).encode())
    # Room for two files, not three; memory off so every get reads the disk.
    cache = make_cache(tmp_path, memory_items=0, disk_bytes=size * 2 + size // 2)
    cache.put(ha, a)
    cache.put(hb, b)
    _age(tmp_path / f"{ha}.json", 300)
    _age(tmp_path / f"{hb}.json", 200)
    assert cache.get(ha) == a  # a read refreshes a: b is now the least recently used
    cache.put(hc, c)
    assert files(tmp_path) == {f"{ha}.json", f"{hc}.json"}
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= cache.settings.disk_bytes
    assert cache.get(hb) is None
    assert cache.get(ha) == a
    assert cache.get(hc) == c


def test_disk_bound_holds_after_many_puts(tmp_path: Path) -> None:
    bound = 5000
    cache = make_cache(tmp_path, memory_items=0, disk_bytes=bound)
    for n in range(40):
        value = config(n, 400)
        cache.put(content_hash(value), value)
        assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= bound
    newest = config(39, 400)
    assert cache.get(content_hash(newest)) == newest  # the file just written is kept


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    for n in range(10):
        value = config(n)
        cache.put(content_hash(value), value)
    assert not [name for name in files(tmp_path) if name.startswith(".tmp-")]
    assert len(files(tmp_path)) == 10


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = config(1), config(2)
    cache = make_cache(tmp_path, memory_items=0)
    cache.put(content_hash(old), old)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.os, "replace", failing_replace)
    cache.put(content_hash(new), new)  # a cache write failure is not fatal
    monkeypatch.undo()
    assert files(tmp_path) == {f"{content_hash(old)}.json"}  # no .tmp-, no partial file
    assert cache.get(content_hash(old)) == old
    assert cache.get(content_hash(new)) is None


def test_concurrent_puts_and_gets_agree(tmp_path: Path) -> None:
    values = [config(n, 200) for n in range(8)]
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            # Memory off: every get reads a file that other threads keep replacing.
            cache = make_cache(tmp_path, memory_items=0)
            for i in range(30):
                value = values[(seed + i) % len(values)]
                h = content_hash(value)
                cache.put(h, value)
                assert cache.get(h) == value  # never a partial file
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert files(tmp_path) == {f"{content_hash(v)}.json" for v in values}
    fresh = make_cache(tmp_path)
    assert all(fresh.get(content_hash(v)) == v for v in values)


def test_default_directory_honours_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WOWLAB_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere" / "configs"
    cache = MemoryDiskCache()
    assert cache.directory == tmp_path / "elsewhere" / "configs"
    assert cache.directory.is_dir()
