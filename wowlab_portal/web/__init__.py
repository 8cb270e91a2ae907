"""The portal's server-rendered pages (Jinja2 templates, readable without JavaScript)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wowlab_portal.web import forms
from wowlab_portal.web.pages import accounts, jobs, nodes, social

STATIC_DIR = Path(__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files and the log-in redirect to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    forms.install_redirects(app)
    for module in (accounts, nodes, jobs, social):
        app.include_router(module.router)


__all__ = ["install_pages"]
