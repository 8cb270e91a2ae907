"""The portal's server-rendered pages (Jinja2 templates, readable without JavaScript)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from wowlab_portal.web import forms
from wowlab_portal.web.pages import accounts, jobs, nodes, social

STATIC_DIR = Path(__file__).parent / "static"
_CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files and the log-in redirect to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Browsers ask for these at the root whatever the page links to.
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon_ico() -> FileResponse:
        """The site icon, for browsers that look for it at the root."""
        return FileResponse(STATIC_DIR / "favicon.ico", headers=_CACHE_A_DAY)

    @app.get("/favicon.svg", include_in_schema=False)
    def favicon_svg() -> FileResponse:
        """The site icon, as the pages link it."""
        return FileResponse(STATIC_DIR / "favicon.svg", headers=_CACHE_A_DAY)

    forms.install_redirects(app)
    for module in (accounts, nodes, jobs, social):
        app.include_router(module.router)
    app.include_router(nodes.notices_router)
    app.include_router(jobs.share_router)


__all__ = ["install_pages"]
