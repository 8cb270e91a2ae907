"""The node endpoints of the HTTP transport, under ``/api/v1/node/``.

Each route calls one :class:`~wowlab_core.coordinator.Coordinator` operation in a worker
thread (the event loop never waits on the database) and answers with the JSON form of a
:mod:`wowlab_core.protocol` message. Every route but ``register`` needs the node's
credentials: ``Authorization: Bearer <token>`` and ``X-Wowlab-Node: <node id>``
(see :mod:`wowlab_core.http_client`, the client side).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    Heartbeat,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
    RunningChunk,
)
from wowlab_portal.api.deps import (
    MAX_ID,
    ClaimsDep,
    CoordinatorDep,
    NodeDep,
    RecentNodesDep,
    SettingsDep,
    WorkDep,
    get_recent_nodes,
)
from wowlab_portal.api.errors import NODE_ERRORS
from wowlab_portal.long_poll import unless_disconnected

T = TypeVar("T")

router = APIRouter(prefix="/api/v1/node", tags=["node"], responses=NODE_ERRORS)


class LeaseRequest(BaseModel):
    """How many chunks the node can take now."""

    max_chunks: int = Field(ge=0, strict=True, description="Free workers of the node.")


class LeaseReply(BaseModel):
    """The chunks leased to the node (possibly none)."""

    leases: list[Lease]


#: A chunk's id: positive and within the INTEGER id column (larger would overflow SQL).
ChunkId = Annotated[int, Field(ge=1, le=MAX_ID)]


class CompletionBody(BaseModel):
    """A node's result for a leased chunk."""

    model_config = ConfigDict(title="Completion")

    chunk_id: ChunkId
    lease_token: str
    result: dict[str, Any]
    elapsed_seconds: float | None = None

    def to_completion(self) -> Completion:
        return Completion(self.chunk_id, self.lease_token, self.result, self.elapsed_seconds)


class CompleteRequest(BaseModel):
    """Results of leased chunks."""

    completions: list[CompletionBody]


class CompleteReply(BaseModel):
    """What became of each result, in order."""

    outcomes: list[CompletionOutcome]


class FailRequest(BaseModel):
    """A chunk that failed on the node."""

    chunk_id: ChunkId
    lease_token: str
    error: str
    #: ``over-budget``: stopped at its time budget, not the node's fault (cut smaller).
    reason: Literal["error", "over-budget"] | None = None


class ReleaseRequest(BaseModel):
    """Leased chunks the node hands back unfinished."""

    chunk_ids: list[ChunkId]
    lease_token: str


class ReleaseReply(BaseModel):
    """How many chunks went back to the pool."""

    released: int


class RunningChunkBody(BaseModel):
    """A chunk the node is running, named by its lease."""

    model_config = ConfigDict(title="RunningChunk")

    chunk_id: ChunkId
    lease_token: str = Field(max_length=256)
    iterations_done: int = Field(default=0, ge=0, le=2**63 - 1)


class HeartbeatBody(BaseModel):
    """Every chunk the node is running (the leases not named here are handed back), and
    optionally what it can run."""

    model_config = ConfigDict(title="Heartbeat")

    running: list[RunningChunkBody] = Field(max_length=256)
    engines: dict[str, str] | None = Field(default=None, description="engine name -> version")
    labels: list[str] | None = None

    def to_heartbeat(self) -> Heartbeat:
        return Heartbeat(
            running=[
                RunningChunk(r.chunk_id, r.lease_token, r.iterations_done) for r in self.running
            ],
            engines=self.engines,
            labels=self.labels,
        )


class WorkReply(BaseModel):
    """Whether the wait ended because work may be available (else: the timeout)."""

    woken: bool


async def as_node(
    request: Request, creds: NodeCredentials, operation: Callable[..., T], *args: Any
) -> T:
    """Run a coordinator operation for the calling node in a worker thread."""
    result = await anyio.to_thread.run_sync(partial(operation, creds, *args))
    get_recent_nodes(request).remember(creds)
    return result


@router.post("/register", status_code=201)
async def register(request: Request, coordinator: CoordinatorDep, info: NodeInfo) -> Registration:
    """Register a new node: its id, secret token and the claim code to show."""
    # Anyone may register: bound how fast one address can fill the nodes table.
    address = request.client.host if request.client else "unknown"
    # Counted in the database (or Redis): in a worker thread, off the event loop.
    await anyio.to_thread.run_sync(
        partial(
            request.app.state.register_limiter.hit,
            f"address:{address}",
            what="node registrations from this address",
        )
    )
    return await anyio.to_thread.run_sync(coordinator.register, info)


@router.get("/claim-status", response_model=ClaimStatus)
async def claim_status(
    request: Request,
    node: NodeDep,
    coordinator: CoordinatorDep,
    claims: ClaimsDep,
    settings: SettingsDep,
    wait: Annotated[
        float, Query(ge=0, description="Long poll: answer on the claim, or after this many s.")
    ] = 0.0,
) -> Any:
    """Whether this node is claimed; with ``wait``, a long poll answered on the claim."""
    deadline = anyio.current_time() + min(wait, settings.long_poll_max_seconds)

    with claims.watch(node.node_id) as claimed:

        async def until_claimed() -> ClaimStatus:
            while True:
                status = await as_node(request, node, coordinator.claim_status)
                remaining = deadline - anyio.current_time()
                if status.claimed or remaining <= 0:
                    return status
                pause = min(settings.claim_recheck_seconds, remaining)
                if claimed.is_set():  # woken, yet not claimed: no busy loop on a stale wake
                    await anyio.sleep(pause)
                    continue
                with anyio.move_on_after(pause):
                    await claimed.wait()

        if wait <= 0:
            return await until_claimed()
        status = await unless_disconnected(request, until_claimed)
    return status if status is not None else Response(status_code=204)


@router.post("/heartbeat")
async def heartbeat(
    request: Request, node: NodeDep, coordinator: CoordinatorDep, body: HeartbeatBody
) -> HeartbeatReply:
    """The node is alive: extends the leases it names, hands back the others it held,
    names the chunks it should stop."""
    return await as_node(request, node, coordinator.heartbeat, body.to_heartbeat())


@router.post("/lease")
async def lease(
    request: Request, node: NodeDep, coordinator: CoordinatorDep, body: LeaseRequest
) -> LeaseReply:
    """Lease up to ``max_chunks`` chunks this node may run."""
    started = time.perf_counter()
    leases = await as_node(request, node, coordinator.lease, body.max_chunks)
    request.app.state.lease_latency.observe(time.perf_counter() - started)
    return LeaseReply(leases=leases)


@router.get("/config/{config_hash}")
async def get_config(
    request: Request,
    node: NodeDep,
    coordinator: CoordinatorDep,
    config_hash: Annotated[str, Path(min_length=1, max_length=128)],
) -> ConfigPayload:
    """A config by hash, for a node that has leased a chunk of it."""
    return await as_node(request, node, coordinator.get_config, config_hash)


@router.post("/complete")
async def complete(
    request: Request, node: NodeDep, coordinator: CoordinatorDep, body: CompleteRequest
) -> CompleteReply:
    """Report chunk results (idempotent: a duplicate is answered ``duplicate``)."""
    completions = [c.to_completion() for c in body.completions]
    outcomes = await as_node(request, node, coordinator.complete, completions)
    return CompleteReply(outcomes=outcomes)


@router.post("/fail", status_code=204)
async def fail(
    request: Request, node: NodeDep, coordinator: CoordinatorDep, body: FailRequest
) -> None:
    """Report that a chunk failed on this node; it is retried or fails its job."""
    await as_node(
        request, node, coordinator.fail, body.chunk_id, body.lease_token, body.error, body.reason
    )


@router.post("/release")
async def release(
    request: Request, node: NodeDep, coordinator: CoordinatorDep, body: ReleaseRequest
) -> ReleaseReply:
    """Hand leased chunks back unfinished (a node stopping)."""
    released = await as_node(request, node, coordinator.release, body.chunk_ids, body.lease_token)
    return ReleaseReply(released=released)


@router.post("/offline", status_code=204)
async def offline(request: Request, node: NodeDep, coordinator: CoordinatorDep) -> None:
    """The node says goodbye before a clean shutdown."""
    await as_node(request, node, coordinator.go_offline)


@router.get("/wait-for-work")
async def wait_for_work(
    request: Request,
    node: NodeDep,
    coordinator: CoordinatorDep,
    work: WorkDep,
    recent: RecentNodesDep,
    settings: SettingsDep,
    timeout: Annotated[
        float, Query(ge=0, description="Answer after this many seconds if nothing happens.")
    ] = 0.0,
) -> WorkReply:
    """A long poll answered when chunks may be available, or after ``timeout`` seconds."""
    if not recent.known(node):
        # Not heard of lately: let the coordinator check the token (it is a sign of life).
        await as_node(request, node, coordinator.touch)
    wait = min(timeout, settings.long_poll_max_seconds)
    woken = await unless_disconnected(request, partial(work.wait, wait))
    return WorkReply(woken=bool(woken))


__all__ = ["router"]
