"""New simulation, the jobs list, a job's live progress and its report."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import WowlabError
from wowlab_portal.api.deps import CoordinatorDep, HooksDep, IdPath, SessionDep
from wowlab_portal.api.routes import jobs as api
from wowlab_portal.web import charts
from wowlab_portal.web.forms import CsrfChecked, PageUser, field_errors, flash, redirect, render

router = APIRouter(prefix="/jobs", include_in_schema=False)

#: Statuses after which a job does not change.
FINISHED = frozenset({"completed", "failed", "cancelled"})


@router.get("")
def jobs_list(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My jobs with status and headline DPS."""
    return render(request, "jobs.html", user, jobs=api.list_jobs(user, session))


def _new_page(
    request: Request,
    user: PageUser,
    hooks: HooksDep,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    **values: str,
) -> Response:
    form = {"example": "", "config": "", "iterations": "1000", "target_error": "", "nodes": "all"}
    form.update(values)
    return render(
        request, "new_job.html", user, status_code,
        examples=api.list_examples(user, hooks), form=form, errors=errors or {},
    )  # fmt: skip


@router.get("/new")
def new_job_page(request: Request, user: PageUser, hooks: HooksDep, example: str = "") -> Response:
    """The new-simulation form."""
    return _new_page(request, user, hooks, example=example[:100])


@router.post("/new", dependencies=[CsrfChecked])
def new_job(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    coordinator: CoordinatorDep,
    example: Annotated[str, Form(max_length=100)] = "",
    config: Annotated[str, Form(max_length=1_000_000)] = "",
    iterations: Annotated[str, Form(max_length=20)] = "",
    target_error: Annotated[str, Form(max_length=20)] = "",
    nodes: Annotated[str, Form(max_length=10)] = "all",
) -> Response:
    """Submit the simulation and go to its page."""
    values = {"example": example, "config": config, "iterations": iterations,
              "target_error": target_error, "nodes": nodes}  # fmt: skip
    try:
        parsed = None
        if config.strip():
            try:
                parsed = json.loads(config)
            except json.JSONDecodeError as exc:
                raise WowlabError(f"not valid JSON: {exc}", field="config") from None
        body = api.JobCreate(
            example=example or None if parsed is None else None,
            config=parsed,
            iterations=iterations.strip() or None,  # type: ignore[arg-type]
            target_error=target_error.strip() or None,  # type: ignore[arg-type]
            nodes=nodes,  # type: ignore[arg-type]
        )
        job = api.create_job(user, session, hooks, coordinator, body)
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        return _new_page(request, user, hooks, 422, field_errors(exc, "config"), **values)
    return redirect(f"/jobs/{job.id}")


@router.get("/{job_id}")
def job_page(request: Request, user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """Live progress while the job runs; its report, with charts, once done."""
    job = api.get_job(user, session, job_id)
    report = job.report or {}
    return render(
        request,
        "job.html",
        user,
        job=job,
        finished=job.status in FINISHED,
        report=report,
        ability_chart=charts.ability_bars(report.get("abilities") or []),
        histogram_chart=charts.dps_histogram(report.get("histogram") or [], report.get("dps")),
        aura_chart=charts.aura_uptimes(report.get("auras") or []),
    )


@router.post("/{job_id}/cancel", dependencies=[CsrfChecked])
def cancel_job(request: Request, user: PageUser, session: SessionDep, job_id: IdPath) -> Response:
    """Cancel the job."""
    reply = api.cancel(user, session, job_id)
    flash(request, "Job cancelled." if reply.cancelled else f"The job had ended ({reply.status}).")
    return redirect(f"/jobs/{job_id}")


__all__ = ["router"]
