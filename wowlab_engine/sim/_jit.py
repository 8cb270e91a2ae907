"""Decorators of the kernel functions: numba's njit, or nothing for the reference copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: True when this copy of the package is the pure-Python reference (see kernels.py).
PURE_PYTHON = __name__.split(".")[0] != "wowlab_engine"


def jit(fn: F) -> F:
    """Compile ``fn`` with ``njit(nogil=True, cache=True)`` (no fastmath: results must be exact)."""
    if PURE_PYTHON:
        return fn
    from numba import njit

    return njit(nogil=True, cache=True)(fn)  # type: ignore[no-any-return]


def inline(fn: F) -> F:
    """Like :func:`jit`, but inlined into its callers by numba (small, hot helpers).

    Every separately compiled function costs about half a second of compile time, most of
    it for passing the model and state arrays; inlined helpers cost none of that.
    """
    if PURE_PYTHON:
        return fn
    from numba import njit

    return njit(nogil=True, cache=True, inline="always")(fn)  # type: ignore[no-any-return]
