"""Simulation jobs: submit, list, progress and report, JSON download, cancel.

A job is visible only to the user who submitted it; anyone else gets 404.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from wowlab_core.compare import MAX_VARIANTS
from wowlab_core.errors import ConfigInvalid, InvalidRequest, NotFound
from wowlab_core.job_info import elapsed_seconds, job_title, with_job_section
from wowlab_core.jobs import submit_job, user_jobs
from wowlab_core.models import JobStatus, SimJob, User, utcnow
from wowlab_core.plugins import Hooks
from wowlab_core.profilesets import compare_submission
from wowlab_core.progress import in_chunk_iterations, iterations_done, job_progress, job_state
from wowlab_core.report import dumps_report
from wowlab_core.scheduler import ACTIVE_JOB_STATUSES, cancel_job
from wowlab_core.share_links import create_share_link, revoke_share_link
from wowlab_core.verification import job_provenance, unverified_share
from wowlab_portal.api.deps import (
    CoordinatorDep,
    CurrentUser,
    HooksDep,
    IdPath,
    SessionDep,
    SettingsDep,
)
from wowlab_portal.api.errors import USER_ERRORS

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=USER_ERRORS)

#: Iterations of a job's first round when only a target error is given.
DEFAULT_ITERATIONS = 1000


class JobCreate(BaseModel):
    """A simulation: an example by name or a config; iterations and/or a target error."""

    example: str | None = Field(default=None, max_length=100, description="An example's name.")
    config: Any = Field(default=None, description="A config (JSON object) for the engine.")
    name: str | None = Field(
        default=None,
        max_length=200,
        description="The job's name when the config has no `name` of its own and is no "
        "example (the file it came from, say).",
    )
    engine: str | None = Field(default=None, max_length=64)
    iterations: int | None = Field(default=None, description="Iterations (first round).")
    target_error: float | None = Field(
        default=None, description="Add iterations until the 95 % error is below this %."
    )
    seed: int | None = None
    nodes: Literal["mine", "shared", "all"] = Field(
        default="shared",
        description="mine: my nodes only; shared (default): mine and those shared with me by "
        "name, as a friend or through a guild; all: also nodes shared with everyone (public), "
        "whose results are spot-checked on other nodes.",
    )
    scale_factors: list[str] | None = Field(
        default=None,
        max_length=MAX_VARIANTS,
        description="Stat weights: stats (crit, haste, mastery, versatility, primary), each "
        "+delta against the config, with common random numbers.",
    )
    delta: float | None = Field(default=None, description="Stat added per scale factor.")
    profilesets: dict[str, Any] | None = Field(
        default=None,
        description="Profile sets: {name: JSON merge patch of the config}, ranked in stages "
        "with culling down to target_error (default 0.2 %).",
    )


class Dps(BaseModel):
    """Headline DPS of a finished job."""

    mean: float
    error95: float
    error_pct: float


class JobSummary(BaseModel):
    """A job in a list: what ran, how far it is, its headline DPS."""

    id: int
    name: str | None = Field(
        description="The config's name, else the example's, else the file's (None: unnamed)."
    )
    title: str = Field(description='What ran, in one line: "fire_mage · numba · 10,000 '
                       'iterations".')  # fmt: skip
    status: str
    status_reason: str | None
    engine: str
    engine_version: str | None
    total_iterations: int
    completed_iterations: int = Field(
        description="Iterations done, within running chunks too (as their nodes last said)."
    )
    target_error: float | None
    fight_seconds: float | None = Field(description="Fight length (None: engine did not say).")
    fight_variation: float | None = Field(
        description="Each iteration lasts fight_seconds x [1 - v, 1 + v]."
    )
    targets: int | None
    seed: int
    own_nodes_only: bool
    allow_public: bool
    dps: Dps | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    elapsed_seconds: float = Field(description="From submit to the end, or to now.")
    shared: bool = Field(description="Whether a public read-only link to it exists.")


class Progress(BaseModel):
    """Chunks by status, iterations done, nodes working."""

    completed_iterations: int = Field(
        description="Iterations done: of finished chunks, of chunks computed once and being "
        "checked, and within running chunks as their nodes' heartbeats last said."
    )
    counted_iterations: int = Field(description="Iterations of finished, accepted chunks.")
    total_iterations: int
    chunks_total: int
    chunks_pending: int
    chunks_leased: int
    chunks_verify: int = Field(description="Computed once, waiting for a second node's check.")
    chunks_completed: int
    chunks_failed: int
    chunks_cancelled: int
    nodes_working: int


class NodeContribution(BaseModel):
    """A node that computed chunks of a job, and how many of them another node confirmed."""

    node_id: int
    name: str
    owner: str | None
    flagged: bool
    chunks: int
    iterations: int
    verified_chunks: int


class JobDetail(JobSummary):
    """A job with its progress, ETA, and its report once completed."""

    config_hash: str
    progress: Progress
    state: Literal["waiting", "running", "finishing", "completed", "failed", "cancelled"] = Field(
        description="What it is doing now (the status, finer while it is active)."
    )
    state_text: str = Field(description='The state in words: "running on 3 nodes".')
    waiting_reason: str | None = Field(
        description="Why no node runs it (state waiting): none you can use is online, "
        "they are all busy, none runs its engine ..."
    )
    eta_seconds: float | None
    shared_at: datetime | None = Field(description="When its public link was made.")
    report: dict[str, Any] | None = Field(
        description="The report once completed, with its `job` section (what ran)."
    )
    nodes: list[NodeContribution] = Field(description="The nodes that computed its chunks.")
    unverified_share: float = Field(
        description="Share of the iterations computed by other people's nodes and not "
        "confirmed by a second run (0 to 1)."
    )


class CancelReply(BaseModel):
    """Whether the job was cancelled now (False: it had ended already)."""

    cancelled: bool
    status: str


class Example(BaseModel):
    """An example config an engine ships."""

    name: str
    engine: str


def summary(job: SimJob, *, in_chunk: int = 0) -> JobSummary:
    """The list form of a job (``in_chunk``: iterations done within its running chunks)."""
    dps = None
    if isinstance(job.result, dict) and isinstance(job.result.get("dps"), dict):
        d = job.result["dps"]
        dps = Dps(mean=d["mean"], error95=d["error95"], error_pct=d["error_pct"])
    return JobSummary(
        id=job.id or 0,
        name=job.name,
        title=job_title(job),
        status=job.status,
        status_reason=job.status_reason,
        engine=job.engine,
        engine_version=job.engine_version,
        total_iterations=job.total_iterations,
        completed_iterations=iterations_done(job, in_chunk),
        target_error=job.target_error,
        fight_seconds=job.fight_seconds,
        fight_variation=job.fight_variation,
        targets=job.targets,
        seed=job.seed,
        own_nodes_only=job.own_nodes_only,
        allow_public=job.allow_public,
        dps=dps,
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
        elapsed_seconds=elapsed_seconds(job),
        shared=job.share_token_hash is not None,
    )


def own_job(session: Session, user: User, job_id: int) -> SimJob:
    """A job of ``user``, else :class:`NotFound`."""
    job = session.get(SimJob, job_id)
    if job is None or job.user_id != user.id:
        raise NotFound(f"you have no job with id {job_id}", field="job_id")
    return job


def eta_seconds(job: SimJob, done: int) -> float | None:
    """Remaining iterations at the rate seen since the job started (None before any
    progress); the job page refines it from the rate it sees itself."""
    if job.status != JobStatus.RUNNING.value or job.started_at is None:
        return None
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
    settings: SettingsDep,
    body: JobCreate,
) -> JobDetail:
    """Submit a simulation; nodes I may use (or only mine) pick up its chunks."""
    config, engine = _config_of(body, hooks)
    if body.profilesets is not None and len(body.profilesets) > MAX_VARIANTS:
        raise InvalidRequest(f"give at most {MAX_VARIANTS} profile sets", field="profilesets")
    config, iterations, target_error = compare_submission(
        config,
        iterations=body.iterations,
        target_error=body.target_error,
        scale_factors=body.scale_factors,
        delta=body.delta,
        profilesets=body.profilesets,
    )
    if iterations is None:
        iterations = DEFAULT_ITERATIONS if target_error is not None else None
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
            target_error=target_error,
            name=body.example or body.name,
            own_nodes_only=body.nodes == "mine",
            allow_public=body.nodes == "all",
            limits=settings.job_limits(),
        )
    except ConfigInvalid as exc:
        # The field is a path inside the config: say so, so a form can show it there.
        field = f"config.{exc.field}" if exc.field else "config"
        raise ConfigInvalid(exc.message, field=field, problems=exc.problems) from None
    session.commit()
    coordinator.notify_work()
    return detail(session, job)


def detail(session: Session, job: SimJob) -> JobDetail:
    """The full form of a job."""
    nodes = job_provenance(session, job_id=job.id or 0)
    report = None
    if job.status == JobStatus.COMPLETED.value and isinstance(job.result, dict):
        report = with_job_section(job.result, job, nodes=nodes)
    owner = session.get(User, job.user_id)
    progress = job_progress(session, job=job)
    done = progress["completed_iterations"]
    state = job_state(session, job=job, progress=progress)
    return JobDetail(
        **summary(job, in_chunk=done - job.completed_iterations).model_dump(),
        config_hash=job.config_hash,
        progress=Progress(**progress),
        state=state.state,  # type: ignore[arg-type]
        state_text=state.text,
        waiting_reason=state.waiting_reason,
        eta_seconds=eta_seconds(job, done),
        shared_at=job.shared_at if job.share_token_hash else None,
        report=report,
        nodes=[NodeContribution(**n) for n in nodes],
        unverified_share=round(unverified_share(nodes, owner.username if owner else None), 4),
    )


@router.get("/jobs")
def list_jobs(user: CurrentUser, session: SessionDep) -> list[JobSummary]:
    """My newest jobs: what ran, status, iterations done and headline DPS."""
    jobs = user_jobs(session, user=user)
    active = [j.id or 0 for j in jobs if j.status in ACTIVE_JOB_STATUSES]
    in_chunk = in_chunk_iterations(session, job_ids=active)
    return [summary(j, in_chunk=in_chunk.get(j.id or 0, 0)) for j in jobs]


@router.get("/jobs/{job_id}")
def get_job(user: CurrentUser, session: SessionDep, job_id: IdPath) -> JobDetail:
    """One of my jobs: progress and ETA while it runs, the report when done."""
    return detail(session, own_job(session, user, job_id))


@router.get("/jobs/{job_id}/report", response_class=Response)
def download_report(user: CurrentUser, session: SessionDep, job_id: IdPath) -> Response:
    """The report of a completed job, as a JSON file (with a ``job`` section: what ran)."""
    return report_file(session, own_job(session, user, job_id))


def report_file(session: Session, job: SimJob) -> Response:
    """The report of a completed job as a JSON download, else :class:`NotFound`."""
    job_id = job.id or 0
    if job.status != JobStatus.COMPLETED.value or job.result is None:
        raise NotFound(f"job {job_id} has no report (it is {job.status})", field="job_id")
    nodes = job_provenance(session, job_id=job_id)
    return Response(
        dumps_report(with_job_section(job.result, job, nodes=nodes)),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="wowlab-job-{job_id}.json"'},
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(
    user: CurrentUser, session: SessionDep, coordinator: CoordinatorDep, job_id: IdPath
) -> CancelReply:
    """Cancel one of my jobs (nodes drop its chunks at their next heartbeat)."""
    job = own_job(session, user, job_id)
    cancelled = cancel_job(session, job=job)
    session.commit()
    if cancelled:  # nodes running its chunks hear of it now, not at their next heartbeat
        coordinator.notify_work()
    session.refresh(job)
    return CancelReply(cancelled=cancelled, status=job.status)


class ShareLink(BaseModel):
    """A job's public read-only link. The token is shown only now: only its hash is kept."""

    url: str = Field(description="The link: anyone who has it reads the report, no login.")
    token: str
    shared_at: datetime


class ShareRevoked(BaseModel):
    """Whether a link was revoked now (False: the job had none)."""

    revoked: bool


def share_path(token: str) -> str:
    """The path of the read-only page a share token opens."""
    return f"/share/{token}"


@router.post("/jobs/{job_id}/share", status_code=201)
def create_share(
    request: Request, user: CurrentUser, session: SessionDep, job_id: IdPath
) -> ShareLink:
    """Make a public read-only link to one of my jobs (replaces its earlier link)."""
    job = own_job(session, user, job_id)
    token = create_share_link(session, job=job)
    session.commit()
    return ShareLink(
        url=str(request.base_url).rstrip("/") + share_path(token),
        token=token,
        shared_at=job.shared_at or utcnow(),
    )


@router.delete("/jobs/{job_id}/share")
def revoke_share(user: CurrentUser, session: SessionDep, job_id: IdPath) -> ShareRevoked:
    """Revoke the public link of one of my jobs: it answers 404 from now on."""
    revoked = revoke_share_link(session, job=own_job(session, user, job_id))
    session.commit()
    return ShareRevoked(revoked=revoked)


__all__ = ["router", "share_path"]
