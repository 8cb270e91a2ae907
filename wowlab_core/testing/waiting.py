"""Waiting for something that happens in another thread or process, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], timeout: float = 30, every: float = 0.02) -> T:
    """Poll ``check`` until it returns something true, and return that.

    Raises ``AssertionError("timed out waiting for <what>")`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what} ({timeout:g} s)")
        time.sleep(every)


__all__ = ["wait_until"]
