"""The two builds of the kernel: compiled with numba, and the same code as plain Python.

The pure-Python build loads the ``wowlab_engine.sim`` package a second time under another
name, where :func:`wowlab_engine.sim._jit.jit` is the identity. Both builds run the same
source, so the reference engine checks the compiled one (and runs where numba cannot).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

PURE_PACKAGE = "_wowlab_engine_pure_sim"
_lock = threading.Lock()


def compiled_loop() -> ModuleType:
    """The numba-compiled ``loop`` module (functions compile on first call, then cache)."""
    from wowlab_engine.sim import loop

    return loop


def pure_python_loop() -> ModuleType:
    """The ``loop`` module of a pure-Python copy of the kernel package."""
    with _lock:
        if PURE_PACKAGE not in sys.modules:
            package_dir = Path(__file__).parent / "sim"
            spec = importlib.util.spec_from_file_location(
                PURE_PACKAGE,
                package_dir / "__init__.py",
                submodule_search_locations=[str(package_dir)],
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[PURE_PACKAGE] = module
            spec.loader.exec_module(module)
        return importlib.import_module(f"{PURE_PACKAGE}.loop")
