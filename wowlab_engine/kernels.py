"""The two builds of the kernel: compiled with numba, and the same code as plain Python.

The pure-Python build loads the ``wowlab_engine.sim`` package a second time under another
name, where :func:`wowlab_engine.sim._jit.jit` is the identity. Both builds run the same
source, so the reference engine checks the compiled one (and runs where numba cannot).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

PURE_PACKAGE = "_wowlab_engine_pure_sim"
SIM_DIR = Path(__file__).parent / "sim"
_lock = threading.Lock()


def _drop_stale_cache() -> None:
    """Delete numba's cached kernel when any kernel source changed since it was built.

    Numba keys a cached function on its own file only: after an edit of ``actions.py`` it
    would keep loading a ``loop.run_block`` with the old code linked in. A stamp of all
    kernel sources next to the cache catches that (it matters when developing, not for an
    installed package, whose sources do not change).
    """
    cache_dir = SIM_DIR / "__pycache__"
    digest = hashlib.sha256()
    for path in sorted(SIM_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = cache_dir / "wowlab-kernel.stamp"
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        for cached in [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")]:
            cached.unlink()
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # a read-only install: numba caches elsewhere, and sources never change


def compiled_loop() -> ModuleType:
    """The numba-compiled ``loop`` module (functions compile on first call, then cache)."""
    with _lock:
        if "wowlab_engine.sim.loop" not in sys.modules:
            _drop_stale_cache()
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
