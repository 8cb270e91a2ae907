"""A listener whose hook name is misspelt (``finshed``)."""

from __future__ import annotations

from typing import Any

from wowlab_core.hookspecs import hookimpl


@hookimpl
def wowlab_job_finshed(job: Any) -> None:
    raise AssertionError("a misspelt hook must never be called")
