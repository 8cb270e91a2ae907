"""A node's persisted settings and secret (``wowlab_core.node_settings``)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from wowlab_core import node_settings as node_settings_module
from wowlab_core.node_settings import (
    NodeSettings,
    default_node_name,
    default_settings_path,
    platform_string,
)
from wowlab_core.protocol import NodeCredentials


def registered() -> NodeSettings:
    return NodeSettings(
        name="raid-pc",
        max_parallel=3,
        transport="http",
        url="https://portal.example",
        node_id=42,
        token="s3cret-token",
    )


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, so only the code itself can make the file private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_writes_owner_only_file(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "nodes" / "default.json"
    registered().save(path)
    assert mode(path) == 0o600
    assert json.loads(path.read_text(encoding="utf-8"))["token"] == "s3cret-token"


def test_save_tightens_an_existing_readable_file(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "default.json"
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    registered().save(path)
    assert mode(path) == 0o600


def test_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "node.json"  # parents are created
    settings = registered()
    settings.save(path)
    loaded = NodeSettings.load(path)
    assert loaded == settings
    assert loaded is not None
    assert loaded.credentials == NodeCredentials(node_id=42, token="s3cret-token")


def test_save_overwrites_previous_settings(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    registered().save(path)
    NodeSettings(name="other", max_parallel=1).save(path)
    loaded = NodeSettings.load(path)
    assert loaded is not None
    assert (loaded.name, loaded.node_id, loaded.token) == ("other", None, None)


def test_load_missing_file_returns_none(tmp_path: Path) -> None:
    assert NodeSettings.load(tmp_path / "nope.json") is None


def test_load_ignores_unknown_keys(tmp_path: Path) -> None:
    # A file written by a newer version must still load.
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"name": "n", "node_id": 1, "future_option": True}))
    loaded = NodeSettings.load(path)
    assert loaded is not None
    assert (loaded.name, loaded.node_id) == ("n", 1)
    assert loaded.transport == "local"


def test_credentials_only_once_registered() -> None:
    assert NodeSettings(name="n").credentials is None
    assert NodeSettings(name="n", node_id=1).credentials is None
    assert NodeSettings(name="n", token="t").credentials is None


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    for _ in range(3):
        registered().save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["node.json"]


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.json"
    registered().save(path)
    before = path.read_bytes()

    def broken_replace(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    import wowlab_core.private_files as private_files

    monkeypatch.setattr(private_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        NodeSettings(name="new").save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["node.json"]


def test_defaults_are_sensible(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = NodeSettings()
    assert settings.max_parallel >= 1
    assert settings.name == default_node_name()
    assert 0 < len(settings.name) <= 100
    monkeypatch.setattr(node_settings_module.os, "cpu_count", lambda: None)
    assert NodeSettings().max_parallel == 1
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path))
    assert default_settings_path("gpu") == tmp_path / "nodes" / "gpu.json"
    assert platform_string().count("(") == 1
