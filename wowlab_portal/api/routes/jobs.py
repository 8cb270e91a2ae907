"""Simulation jobs: submit, list, progress and report, JSON download, cancel.

A job is visible only to the user who submitted it; anyone else gets 404.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from wowlab_core.errors import ConfigInvalid, InvalidRequest, NotFound
from wowlab_core.jobs import job_progress, submit_job, user_jobs
from wowlab_core.models import JobStatus, SimJob, User, utcnow
from wowlab_core.plugins import Hooks
from wowlab_core.report import dumps_report
from wowlab_core.scheduler import cancel_job
from wowlab_portal.api.deps import CoordinatorDep, CurrentUser, HooksDep, IdPath, SessionDep
from wowlab_portal.api.errors import USER_ERRORS

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=USER_ERRORS)

#: Iterations of a job's first round when only a target error is given.
DEFAULT_ITERATIONS = 1000


class JobCreate(BaseModel):
    """A simulation: an example by name or a config; iterations and/or a target error."""

    example: str | None = Field(default=None, max_length=100, description="An example's name.")
    config: Any = Field(default=None, description="A config (JSON object) for the engine.")
    engine: str | None = Field(default=None, max_length=64)
    iterations: int | None = Field(default=None, description="Iterations (first round).")
    target_error: float | None = Field(
        default=None, description="Add iterations until the 95 % error is below this %."
    )
    seed: int | None = None
    nodes: Literal["mine", "all"] = Field(
        default="all", description="Run on my nodes only, or on every node I may use."
    )


class Dps(BaseModel):
    """Headline DPS of a finished job."""

    mean: float
    error95: float
    error_pct: float


class JobSummary(BaseModel):
    """A job in a list."""

    id: int
    status: str
    status_reason: str | None
    engine: str
    total_iterations: int
    completed_iterations: int
    target_error: float | None
    own_nodes_only: bool
    dps: Dps | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class Progress(BaseModel):
    """Chunks by status, iterations done, nodes working."""

    completed_iterations: int
    total_iterations: int
    chunks_total: int
    chunks_pending: int
    chunks_leased: int
    chunks_completed: int
    chunks_failed: int
    chunks_cancelled: int
    nodes_working: int


class JobDetail(JobSummary):
    """A job with its progress, ETA, and its report once completed."""

    seed: int
    config_hash: str
    progress: Progress
    eta_seconds: float | None
    report: dict[str, Any] | None


class CancelReply(BaseModel):
    """Whether the job was cancelled now (False: it had ended already)."""

    cancelled: bool
    status: str


class Example(BaseModel):
    """An example config an engine ships."""

    name: str
    engine: str


def summary(job: SimJob) -> JobSummary:
    """The list form of a job."""
    dps = None
    if isinstance(job.result, dict) and isinstance(job.result.get("dps"), dict):
        d = job.result["dps"]
        dps = Dps(mean=d["mean"], error95=d["error95"], error_pct=d["error_pct"])
    return JobSummary(
        id=job.id or 0,
        status=job.status,
        status_reason=job.status_reason,
        engine=job.engine,
        total_iterations=job.total_iterations,
        completed_iterations=job.completed_iterations,
        target_error=job.target_error,
        own_nodes_only=job.own_nodes_only,
        dps=dps,
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def own_job(session: Session, user: User, job_id: int) -> SimJob:
    """A job of ``user``, else :class:`NotFound`."""
    job = session.get(SimJob, job_id)
    if job is None or job.user_id != user.id:
        raise NotFound(f"you have no job with id {job_id}", field="job_id")
    return job


def eta_seconds(job: SimJob) -> float | None:
    """Remaining iterations at the rate seen so far (None before any progress)."""
    if job.status != JobStatus.RUNNING.value or job.started_at is None:
        return None
    done = job.completed_iterations
    elapsed = (utcnow() - job.started_at).total_seconds()
    if done <= 0 or elapsed <= 0:
        return None
    return round((job.total_iterations - done) / (done / elapsed), 1)


def examples(hooks: Hooks) -> dict[str, tuple[str, Any]]:
    """Example name → (engine, path), first engine wins."""
    found: dict[str, tuple[str, Any]] = {}
    for engine in hooks.engines().values():
        for name, path in engine.examples().items():
            found.setdefault(name, (engine.name, path))
    return found


def _config_of(body: JobCreate, hooks: Hooks) -> tuple[Any, str | None]:
    if (body.example is None) == (body.config is None):
        raise InvalidRequest("give either an example's name or a config", field="config")
    if body.config is not None:
        return body.config, body.engine
    known = examples(hooks)
    if body.example not in known:
        names = ", ".join(sorted(known)) or "none installed"
        raise InvalidRequest(f"no example {body.example!r} (examples: {names})", field="example")
    engine, path = known[body.example]
    return json.loads(path.read_bytes()), body.engine or engine


@router.get("/examples")
def list_examples(user: CurrentUser, hooks: HooksDep) -> list[Example]:
    """The example configs the installed engines ship."""
    return [Example(name=n, engine=e) for n, (e, _) in sorted(examples(hooks).items())]


@router.post("/jobs", status_code=201)
def create_job(
    user: CurrentUser,
    session: SessionDep,
    hooks: HooksDep,
    coordinator: CoordinatorDep,
    body: JobCreate,
) -> JobDetail:
    """Submit a simulation; nodes I may use (or only mine) pick up its chunks."""
    config, engine = _config_of(body, hooks)
    iterations = body.iterations
    if iterations is None:
        iterations = DEFAULT_ITERATIONS if body.target_error is not None else None
    if iterations is None:
        raise InvalidRequest("give iterations, a target_error, or both", field="iterations")
    try:
        job = submit_job(
            session,
            user=user,
            config=config,
            iterations=iterations,
            engine_name=engine,
            seed=body.seed,
            hooks=hooks,
            target_error=body.target_error,
            own_nodes_only=body.nodes == "mine",
        )
    except ConfigInvalid as exc:
        # The field is a path inside the config: say so, so a form can show it there.
        field = f"config.{exc.field}" if exc.field else "config"
        raise ConfigInvalid(exc.message, field=field) from None
    session.commit()
    coordinator.notify_work()
    return detail(session, job)


def detail(session: Session, job: SimJob) -> JobDetail:
    """The full form of a job."""
    report = job.result if job.status == JobStatus.COMPLETED.value else None
    return JobDetail(
        **summary(job).model_dump(),
        seed=job.seed,
        config_hash=job.config_hash,
        progress=Progress(**job_progress(session, job=job)),
        eta_seconds=eta_seconds(job),
        report=report,
    )


@router.get("/jobs")
def list_jobs(user: CurrentUser, session: SessionDep) -> list[JobSummary]:
    """My newest jobs, with status and headline DPS."""
    return [summary(j) for j in user_jobs(session, user=user)]


@router.get("/jobs/{job_id}")
def get_job(user: CurrentUser, session: SessionDep, job_id: IdPath) -> JobDetail:
    """One of my jobs: progress and ETA while it runs, the report when done."""
    return detail(session, own_job(session, user, job_id))


@router.get("/jobs/{job_id}/report", response_class=Response)
def download_report(user: CurrentUser, session: SessionDep, job_id: IdPath) -> Response:
    """The report of a completed job, as a JSON file."""
    job = own_job(session, user, job_id)
    if job.status != JobStatus.COMPLETED.value or job.result is None:
        raise NotFound(f"job {job_id} has no report (it is {job.status})", field="job_id")
    return Response(
        dumps_report(job.result),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="wowlab-job-{job_id}.json"'},
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(user: CurrentUser, session: SessionDep, job_id: IdPath) -> CancelReply:
    """Cancel one of my jobs (nodes drop its chunks at their next heartbeat)."""
    job = own_job(session, user, job_id)
    cancelled = cancel_job(session, job=job)
    session.commit()
    session.refresh(job)
    return CancelReply(cancelled=cancelled, status=job.status)


__all__ = ["router"]
