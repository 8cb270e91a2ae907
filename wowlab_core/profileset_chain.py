"""Profile sets on a pool: each stage a job, the next one submitted when a stage finishes.

A stage's compare document carries its place in the chain (``compare.profileset``):
``{"target_error", "stage", "previous_job", "culled": {variant: stage}}``. When a stage job
completes, :meth:`ProfileSetChain.advance` adds up the sums of every stage so far (walking
``previous_job``), plans the next stage (:func:`wowlab_core.compare.next_stage`) and submits
it for the same user, seed and nodes. The next stage's document is a pure function of the
chain, so it is submitted at most once (a job with its config hash already exists), and
:meth:`ProfileSetChain.resume` picks up chains a restart interrupted. Nothing here touches
the scheduler: stages are ordinary jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from wowlab_core.compare import BASE, CompareSums, next_stage, ranking
from wowlab_core.db import is_postgres, read_session, write_session
from wowlab_core.hashing import content_hash
from wowlab_core.hookspecs import hookimpl
from wowlab_core.jobs import submit_job
from wowlab_core.models import JobStatus, SimConfig, SimJob, User
from wowlab_core.plugins import Hooks

log = logging.getLogger(__name__)

#: Most stages of one profile set (1 %, 0.2 %, the target, with extensions in between).
MAX_STAGES = 12
#: Jobs looked at by :meth:`ProfileSetChain.resume` (the newest).
RESUME_WINDOW = 500


@dataclass(frozen=True)
class StageInfo:
    """A stage job's place in its profile set."""

    job_id: int
    number: int
    target_error: float
    previous_job: int | None
    culled: dict[str, int]
    document: dict[str, Any]

    @property
    def active(self) -> list[str]:
        """The variants this stage ran (the base first)."""
        return [BASE, *(v["name"] for v in self.document["compare"]["variants"])]


def stage_info(session: Session, job: SimJob) -> StageInfo | None:
    """The profile-set stage ``job`` runs, or None if it is not one."""
    config = session.get(SimConfig, job.config_hash)
    document = config.config if config is not None else None
    compare = document.get("compare") if isinstance(document, Mapping) else None
    meta = compare.get("profileset") if isinstance(compare, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    return StageInfo(
        job_id=job.id or 0,
        number=int(meta.get("stage", 1)),
        target_error=float(meta.get("target_error", 0.2)),
        previous_job=meta.get("previous_job"),
        culled={str(k): int(v) for k, v in (meta.get("culled") or {}).items()},
        document=dict(document),  # type: ignore[arg-type]
    )


def chain_of(session: Session, job: SimJob) -> list[tuple[SimJob, StageInfo]]:
    """The stages up to ``job``, first stage first (only the owner's jobs)."""
    out: list[tuple[SimJob, StageInfo]] = []
    current: SimJob | None = job
    while current is not None and len(out) < MAX_STAGES:
        info = stage_info(session, current)
        if info is None:
            break
        out.append((current, info))
        previous = session.get(SimJob, info.previous_job) if info.previous_job else None
        current = previous if previous is not None and previous.user_id == job.user_id else None
    return out[::-1]


def chain_sums(chain: list[tuple[SimJob, StageInfo]]) -> CompareSums | None:
    """The sums of every stage (None while one has no report)."""
    sums = CompareSums()
    for job, _ in chain:
        report = job.result if job.status == JobStatus.COMPLETED.value else None
        if not isinstance(report, Mapping) or not isinstance(report.get("compare_sums"), Mapping):
            return None
        sums = sums.merge(CompareSums.from_metrics(report["compare_sums"]))
    return sums


def next_document(session: Session, job: SimJob) -> tuple[dict[str, Any], int] | None:
    """The document and iterations of the stage after ``job`` (None: the set is done)."""
    chain = chain_of(session, job)
    if not chain or chain[-1][0].id != job.id:
        return None
    info = chain[-1][1]
    sums = chain_sums(chain)
    if sums is None or info.number >= MAX_STAGES:
        return None
    done = sum(j.total_iterations for j, _ in chain)
    stage = next_stage(
        sums,
        info.active,
        target_error=info.target_error,
        done=done,
        number=info.number + 1,
        max_iterations=job.max_iterations or done,
    )
    if stage is None:
        return None
    compare = info.document["compare"]
    culled = dict(info.culled)
    culled.update({v: info.number for v in info.active if v not in stage.variants})
    variants = [v for v in compare["variants"] if v["name"] in stage.variants]
    document = {
        "compare": {
            "base": compare["base"],
            "variants": variants,
            "iteration_offset": stage.iteration_offset,
            "profileset": {
                "target_error": info.target_error,
                "stage": stage.number,
                "previous_job": job.id,
                "culled": dict(sorted(culled.items())),
            },
        }
    }
    return document, stage.iterations


def profileset_view(session: Session, job: SimJob) -> dict[str, Any] | None:
    """What a stage's page shows: the stages (with links), the ranking so far, next stage."""
    chain = chain_of(session, job)
    if not chain:
        return None
    info = chain[-1][1]
    sums = chain_sums(chain)
    following = next_document(session, job) if sums is not None else None
    next_job = None
    if following is not None:
        next_job = session.exec(
            select(SimJob.id).where(
                col(SimJob.user_id) == job.user_id,
                col(SimJob.config_hash) == content_hash(following[0]),
            )
        ).first()
    return {
        "stage": info.number,
        "target_error": info.target_error,
        "stages": [
            {"job_id": j.id, "stage": i.number, "variants": i.active, "status": j.status}
            for j, i in chain
        ],
        "ranking": ranking(sums, info.culled) if sums is not None and sums.variants else [],
        "final": sums is not None and following is None,
        "next_job": next_job,
    }


class ProfileSetChain:
    """Submits each next stage when a stage job finishes (a plugin object of the portal)."""

    def __init__(self, db: Engine, hooks: Hooks, notify: Callable[[], None]) -> None:
        self.db = db
        self.hooks = hooks
        self.notify = notify

    @hookimpl
    def wowlab_job_finished(self, job: SimJob) -> None:
        """A stage finished: submit the next one."""
        if job.id is not None and job.status == JobStatus.COMPLETED.value:
            self.advance(job.id)

    def advance(self, job_id: int) -> int | None:
        """Submit the stage after job ``job_id`` unless it exists; its id (None: none)."""
        return self._advance(job_id)[0]

    def _advance(self, job_id: int) -> tuple[int | None, bool]:
        with write_session(self.db) as session:
            if is_postgres(self.db):
                # Several portal workers may advance one chain at once (each resumes at
                # start): one at a time, so the second finds the stage the first made.
                session.execute(
                    sa.text("select pg_advisory_xact_lock(hashtextextended(:key, 11))"),
                    {"key": f"wowlab-profileset-{job_id}"},
                )
            job = session.get(SimJob, job_id)
            user = session.get(User, job.user_id) if job is not None else None
            if job is None or user is None or job.status != JobStatus.COMPLETED.value:
                return None, False
            following = next_document(session, job)
            if following is None:
                return None, False
            document, iterations = following
            existing = session.exec(
                select(SimJob.id).where(
                    col(SimJob.user_id) == job.user_id,
                    col(SimJob.config_hash) == content_hash(document),
                )
            ).first()
            if existing is not None:
                return existing, False
            new = submit_job(
                session,
                user=user,
                config=document,
                iterations=iterations,
                engine_name=job.engine,
                seed=job.seed,
                hooks=self.hooks,
                own_nodes_only=job.own_nodes_only,
                allow_public=job.allow_public,
            )
            session.commit()
            new_id = new.id
        log.info("profile set: job %s submitted after stage job %s", new_id, job_id)
        self.notify()
        return new_id, True

    def resume(self) -> int:
        """Advance finished stages whose next stage is missing (after a restart)."""
        with read_session(self.db) as session:
            ids = session.exec(
                select(SimJob.id)
                .where(col(SimJob.status) == JobStatus.COMPLETED.value)
                .order_by(col(SimJob.id).desc())
                .limit(RESUME_WINDOW)
            ).all()
        submitted = 0
        for job_id in ids:
            if job_id is not None:
                try:
                    submitted += self._advance(job_id)[1]
                except Exception:  # one broken chain must not stop the others
                    log.exception("profile set: cannot advance after job %s", job_id)
        return submitted


__all__ = ["ProfileSetChain", "chain_of", "next_document", "profileset_view", "stage_info"]
