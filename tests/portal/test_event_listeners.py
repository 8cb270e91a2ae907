"""Event listeners run off the request path: a slow ``wowlab_job_finished`` listener (a
webhook) does not slow down the node whose ``complete`` finished the job."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio.to_thread
import pytest

from wowlab_core.hookspecs import hookimpl
from wowlab_core.http_client import HttpTransport
from wowlab_core.testing.conformance import complete_all, registered_node

from .conftest import Portal

LISTENER_SECONDS = 3.0


class SlowWebhook:
    """Takes 3 s per finished job, as a webhook to a slow server would; records what it
    saw and in which thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()

    @hookimpl
    def wowlab_chunk_completed(self, chunk: Any, result: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(("chunk", (chunk.job_id, chunk.seed_offset)))

    @hookimpl
    def wowlab_job_finished(self, job: Any) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(LISTENER_SECONDS)
        self.events.append(("job", (job.id, job.status)))


@pytest.mark.anyio
async def test_a_slow_job_finished_listener_does_not_slow_complete(
    portal: Portal, register_plugin: Any
) -> None:
    webhook = register_plugin(SlowWebhook())
    harness = portal.harness
    transport = HttpTransport(portal.url)
    try:
        creds = await registered_node(harness, transport, max_parallel=3)
        first = harness.submit(20, chunks=2, seed=1)
        second = harness.submit(10, chunks=1, seed=2)
        leases = await transport.lease(creds, 3)
        timings = []
        for lease in sorted(leases, key=lambda le: le.chunk_id):
            started = time.perf_counter()
            await complete_all(transport, creds, [lease])
            timings.append(time.perf_counter() - started)
        print(f"complete() with a {LISTENER_SECONDS:.0f} s listener: {max(timings):.3f} s max")
        # Both jobs finished within these calls; neither waited for the 3 s webhook.
        assert max(timings) < 1.0, timings
        assert harness.job(first).status == harness.job(second).status == "completed"
        hooks = harness.coordinator.hooks
        assert await anyio.to_thread.run_sync(hooks.flush_events, 30)
    finally:
        await transport.aclose()
    # Every event arrived, in the order it happened: a job's chunks before the job.
    assert webhook.events == [
        ("chunk", (first, 0)),
        ("chunk", (first, 10)),
        ("job", (first, "completed")),
        ("chunk", (second, 0)),
        ("job", (second, "completed")),
    ]
    assert webhook.threads == {"wowlab-events"}  # never the thread serving the request
