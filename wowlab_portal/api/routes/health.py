"""``GET /healthz``: whether the portal runs and reaches its database."""

from __future__ import annotations

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

router = APIRouter(tags=["health"])


def _database_answers(db: Engine) -> bool:
    try:
        with db.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 when the portal and its database answer, else 503."""
    ok = await anyio.to_thread.run_sync(_database_answers, request.app.state.db)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unavailable"},
        status_code=200 if ok else 503,
    )


__all__ = ["router"]
