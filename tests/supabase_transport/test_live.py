"""Against a real Supabase project, when one is configured (opt-in):

    WOWLAB_SUPABASE_TEST_URL     https://PROJECT.supabase.co
    WOWLAB_SUPABASE_TEST_KEY     the project's anon key
    WOWLAB_SUPABASE_TEST_DB_URL  postgresql://postgres:PASSWORD@HOST:5432/postgres

It applies the migrations, registers a node through the project's own PostgREST, claims it
and runs a small toy job to its report. Without the variables it is reported as NOT
CONFIGURED (a skip, also under CI): no project is a choice, not a missing part."""

from __future__ import annotations

import os
import uuid

import anyio
import pytest

from wowlab_core.db import create_db_engine, write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import JobStatus, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo, Outcome
from wowlab_core.testing.conformance import TOY_CONFIG, toy_result
from wowlab_transport_supabase import migrations
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.finisher import Finisher

VARS = ("WOWLAB_SUPABASE_TEST_URL", "WOWLAB_SUPABASE_TEST_KEY", "WOWLAB_SUPABASE_TEST_DB_URL")

pytestmark = pytest.mark.skipif(
    not all(os.environ.get(v) for v in VARS),
    reason="NOT CONFIGURED: set " + ", ".join(VARS) + " to run against a real Supabase project",
)


@pytest.mark.anyio
async def test_a_real_project_runs_a_job(wowlab_hooks: Hooks) -> None:
    engine = create_db_engine(os.environ["WOWLAB_SUPABASE_TEST_DB_URL"])
    transport = SupabaseTransport(
        os.environ["WOWLAB_SUPABASE_TEST_URL"], os.environ["WOWLAB_SUPABASE_TEST_KEY"]
    )
    try:
        migrations.apply(engine)
        reg = await transport.register(NodeInfo(name=f"live-{uuid.uuid4().hex[:6]}"))
        creds = NodeCredentials(reg.node_id, reg.token)
        with write_session(engine) as s:
            user = User(username=f"live-{uuid.uuid4().hex[:8]}")
            s.add(user)
            s.commit()
            user_id = user.id or 0
        claim_and_announce(engine, user_id=user_id, code=reg.claim_code)
        status = await transport.claim_status(creds, wait=10)
        assert status.claimed
        with write_session(engine) as s:
            owner = s.get(User, user_id)
            assert owner is not None
            job = submit_job(
                s,
                user=owner,
                config=TOY_CONFIG,
                iterations=20,
                engine_name="toy",
                seed=3,
                hooks=wowlab_hooks,
                chunks=2,
            )
            s.commit()
            job_id = job.id or 0
        leases = await transport.lease(creds, 2)
        outcomes = await transport.complete(
            creds, [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
        )
        assert {o.outcome for o in outcomes} == {Outcome.ACCEPTED.value}
        Finisher(engine, hooks=wowlab_hooks).finish_pending()
        with write_session(engine) as s:
            done = s.get(type(job), job_id)
            assert done is not None and done.status == JobStatus.COMPLETED.value
            s.delete(done)
            s.commit()
        await anyio.sleep(0)
    finally:
        await transport.aclose()
        engine.dispose()
