"""The finisher: merges jobs whose iterations the SQL has all counted.

The node functions count results in SQL, but the report is the engine's and the merge the
core's exact one (:func:`wowlab_core.jobs.finalize_job`), so the same bytes come out as on
every other transport. The finisher finds active jobs with ``completed_iterations >=
total_iterations`` (locked ``FOR UPDATE SKIP LOCKED``, so several finishers, or a portal on
the same database, never merge a job twice), finalizes them, and announces
``wowlab_job_finished``. ``wowlab supabase worker`` runs it in a loop woken by
``NOTIFY wowlab_finish`` (the hint) and a poll (the truth); it also reaps expired leases
where pg_cron is missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.db import write_session
from wowlab_core.job_states import ACTIVE_JOB_STATUSES
from wowlab_core.jobs import finalize_job
from wowlab_core.models import SimJob
from wowlab_core.plugins import Hooks

log = logging.getLogger(__name__)

CHANNEL = "wowlab_finish"


class Finisher:
    """Finalizes jobs the SQL counted as done."""

    def __init__(self, db: Engine, *, hooks: Hooks) -> None:
        self.db = db
        self.hooks = hooks
        self._prepared: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.finished = 0

    def finish_pending(self) -> list[int]:
        """Finalize every job whose iterations are all counted; returns the ended jobs' ids."""
        with self._lock, write_session(self.db) as session:
            jobs = session.exec(
                select(SimJob)
                .where(
                    col(SimJob.status).in_(ACTIVE_JOB_STATUSES),
                    col(SimJob.completed_iterations) >= col(SimJob.total_iterations),
                )
                .order_by(col(SimJob.id))
                .with_for_update(skip_locked=True)
            ).all()
            ended: list[SimJob] = []
            for job in jobs:
                while len(self._prepared) > 32:
                    self._prepared.popitem(last=False)
                if finalize_job(session, job=job, hooks=self.hooks, prepared_cache=self._prepared):
                    ended.append(job)
            session.commit()
        for job in ended:
            self.hooks.job_finished(job=job)
        self.finished += len(ended)
        return [job.id or 0 for job in ended]

    def reap(self) -> int:
        """Run the SQL reaper once (what pg_cron's wowlab-reap does)."""
        with self.db.begin() as conn:
            return int(conn.execute(sa.text("select wowlab.reap_now()")).scalar_one())

    def run(
        self, stop: threading.Event, *, poll_seconds: float = 5.0, reap_seconds: float = 60.0
    ) -> None:
        """Loop until ``stop``: LISTEN for finished jobs, finalize them, reap now and then."""
        url = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        next_reap = 0.0
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    next_look = 0.0
                    while not stop.is_set():
                        if time.monotonic() >= next_look:
                            self.finish_pending()
                            next_look = time.monotonic() + poll_seconds
                        if time.monotonic() >= next_reap:
                            self.reap()
                            next_reap = time.monotonic() + reap_seconds
                        # Short waits, so that a stop is seen within half a second.
                        for _ in listener.notifies(timeout=0.5, stop_after=1):
                            next_look = 0.0
            except (psycopg.OperationalError, sa.exc.OperationalError) as exc:
                log.warning("finisher: database unavailable (%s); retrying", exc)
                stop.wait(2.0)


__all__ = ["CHANNEL", "Finisher"]
