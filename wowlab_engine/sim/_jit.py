"""The decorator of the kernel functions: numba's njit, or nothing for the reference copy."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: True when this copy of the package is the pure-Python reference (see kernels.py).
PURE_PYTHON = __name__.split(".")[0] != "wowlab_engine"


@cache
def _options() -> dict[str, Any]:
    # No fastmath: results must be bit-identical everywhere. No NRT: the kernel never
    # allocates, and without it numba does not update the reference counts of every array
    # argument at every call, which made the event loop ten times slower.
    options: dict[str, Any] = {"nogil": True, "cache": True}
    from numba.core.cpu import CPUTargetOptions

    if hasattr(CPUTargetOptions, "_nrt"):
        options["_nrt"] = False
    return options


def jit(fn: F) -> F:
    """Compile ``fn`` with numba's ``njit`` (nogil, cached, exact float math, no NRT)."""
    if PURE_PYTHON:
        return fn
    from numba import njit

    return njit(**_options())(fn)  # type: ignore[no-any-return]
