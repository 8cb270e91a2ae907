"""Meta-tests: every hook is documented with its exact signature, and every hook has a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from wowlab_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("wowlab_"))


def signature_of(name: str) -> str:
    """``wowlab_x(a: T) -> R`` as written in hookspecs.py (annotations are strings there)."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def is_firstresult(name: str) -> bool:
    opts = getattr(hookspecs, name).wowlab_spec
    return bool(opts.get("firstresult"))


def test_hooks_are_the_exported_ones() -> None:
    assert sorted(n for n in hookspecs.__all__ if n.startswith("wowlab_")) == HOOKS
    assert len(HOOKS) >= 12


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_complete_docstring(name: str) -> None:
    fn = getattr(hookspecs, name)
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{name} has no docstring"
    params = list(inspect.signature(fn).parameters)
    if params:
        assert "Args:" in doc, f"{name} does not describe its arguments"
        for param in params:
            assert re.search(rf"^\s*{param}:", doc, re.M), f"{name} does not describe {param!r}"
    if is_firstresult(name):
        assert "Stops at the first non-None result." in doc
    # Where it runs: the thread, and whether inside a database transaction.
    assert re.search(r"^Runs: ", doc, re.M), f"{name} does not say where it runs"
    assert "transaction" in doc, f"{name} does not say whether it runs in a transaction"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_in_the_reference_with_its_signature(name: str) -> None:
    reference = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert f"### `{name}`" in reference, f"docs/hooks.md has no section for {name}"
    assert f"`{signature_of(name)}`" in reference, (
        f"docs/hooks.md shows another signature for {name}; expected {signature_of(name)}"
    )
    if is_firstresult(name):
        section = reference.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert "firstresult" in section


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name: str) -> None:
    pattern = re.compile(rf"def test_\w*{name}")
    sources = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name]
    assert any(pattern.search(p.read_text(encoding="utf-8")) for p in sources), (
        f"no test function named after {name} (def test_..{name}..)"
    )
