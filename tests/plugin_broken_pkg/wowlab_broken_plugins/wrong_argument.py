"""A listener that names an argument the hook does not have (``jobb``)."""

from __future__ import annotations

from typing import Any

from wowlab_core.hookspecs import hookimpl


@hookimpl
def wowlab_job_finished(jobb: Any) -> None:
    raise AssertionError("a hook with a wrong argument must never be called")
