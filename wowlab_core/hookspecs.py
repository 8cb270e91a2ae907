"""Hook specifications of wowlab (pluggy project name ``wowlab``).

A plugin implements any of these with ``@hookimpl`` and is found through the entry-point
group ``wowlab`` (built-in plugins are listed in ``wowlab_core.plugins.DEFAULT_PLUGINS``).
Call hooks through :class:`wowlab_core.plugins.Hooks`, never ``pm.hook`` directly.

Every spec says where it runs (``Runs:``): in which thread, whether inside a database
transaction, and whether it may block. A hook that runs inside a transaction holds it (on
SQLite: the whole database's write lock) for as long as it takes, so it must be quick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI

    from wowlab_core.cache import CacheSettings, ConfigCache
    from wowlab_core.engines import Engine
    from wowlab_core.models import Node, NodeAccess, SimChunk, SimJob, User
    from wowlab_core.planning import Capacity, ChunkPlan
    from wowlab_core.results import ChunkResult
    from wowlab_core.transport import PortalService, TransportFactory

hookspec = pluggy.HookspecMarker("wowlab")
hookimpl = pluggy.HookimplMarker("wowlab")


# --- registration ---------------------------------------------------------------------


@hookspec
def wowlab_register_engines(register: Callable[[Engine], None]) -> None:
    """Contribute combat engines.

    Runs: when something first needs the engines (``wowlab sim``, a node starting, the
    portal validating a job), in that caller's thread, outside any transaction; called
    again on later uses, so keep it cheap and import heavy modules inside it. A plugin that
    raises here, or registers an engine without a name or under a taken name, is marked
    broken and none of its engines are used.

    Args:
        register: call it once per engine object; its ``name`` must be unique.
    """


@hookspec
def wowlab_register_transports(register: Callable[[str, TransportFactory], None]) -> None:
    """Contribute node transports.

    Runs: like ``wowlab_register_engines``: in the caller's thread, outside any
    transaction, possibly more than once; a plugin that raises or takes a used name is
    marked broken.

    Args:
        register: call ``register(name, factory)``; ``factory(url, **options)`` returns a
            :class:`wowlab_core.transport.NodeTransport`. Names must be unique.
    """


@hookspec
def wowlab_register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``wowlab`` CLI.

    Runs: once when the ``wowlab`` command starts, in the main thread, outside any
    transaction, before the command line is parsed: keep imports of heavy modules inside
    the commands. A plugin that raises, or adds a command whose name is taken, adds none
    and is marked broken.

    Args:
        cli: the top-level click group; call ``cli.add_command(...)``.
    """


# --- claim ----------------------------------------------------------------------------


@hookspec(firstresult=True)
def wowlab_claim_code() -> str | None:
    """Make a new claim code for a registering node.

    The code must use the claim-code alphabet (see :mod:`wowlab_core.claim_codes`) and be
    6 characters long. Stops at the first non-None result.

    Runs: when a node registers or its code expires, in the thread serving that node's
    request, inside the transaction that stores the code: it must not block.

    Returns:
        The code, or None to let the next plugin (finally the built-in generator) decide.
    """


@hookspec
def wowlab_node_claimed(node: Node, user: User) -> None:
    """Called after ``user`` has claimed ``node`` (the claim is committed).

    Runs: in the thread that made the claim (a portal request, a test), after the commit
    (outside any transaction), before the claim request is answered: keep it short; hand
    slow work to a thread of your own. An exception is logged and ignored.

    Args:
        node: the claimed node (its ``user_id`` is now set).
        user: the new owner.
    """


@hookspec
def wowlab_node_removed(node_id: int, user: User | None) -> None:
    """Called after a node was removed (the deletion is committed): its owner removed it,
    or ``wowlab db cleanup`` deleted it as stale. Its token no longer works; its chunk
    history stays. A transport drops what it keeps for the node here (the MQTT bridge
    deletes the node's broker account).

    Runs: in the thread that removed the node (a portal request's, or the CLI's), after
    the commit, outside any transaction; it may block only briefly.

    Args:
        node_id: the removed node's id.
        user: who removed it, or None for the stale-node cleanup.
    """


# --- scheduler ------------------------------------------------------------------------


@hookspec(firstresult=True)
def wowlab_plan_chunks(job: SimJob, capacity: Capacity) -> Sequence[ChunkPlan] | None:
    """Cut a job into chunks. Stops at the first non-None result.

    The chunks must tile ``[0, job.total_iterations)`` (or the new round's range for a
    ``target_error`` job, starting at ``capacity.start``) with no gap or overlap.

    Runs: inside the transaction that submits the job (a portal request's thread), or for
    a ``target_error`` job's next round inside the transaction of the completing node's
    request: it must not block.

    Args:
        job: the job being planned (not yet flushed chunks).
        capacity: the pool that may run it: eligible nodes, workers, measured throughput.

    Returns:
        The chunk plans, or None to fall through to the built-in planner.
    """


@hookspec(firstresult=True)
def wowlab_chunk_size(job: SimJob, capacity: Capacity) -> int | None:
    """Choose the iterations per chunk for the built-in planner. Stops at the first non-None result.

    Runs: where ``wowlab_plan_chunks`` runs (inside the submitting transaction): it must
    not block.

    Args:
        job: the job being planned.
        capacity: the pool that may run it.

    Returns:
        A positive number of iterations, or None for the built-in choice (target chunk
        duration times measured throughput, bounded).
    """


# --- cache ----------------------------------------------------------------------------


@hookspec(firstresult=True)
def wowlab_config_cache(settings: CacheSettings) -> ConfigCache | None:
    """Provide the config cache a node uses. Stops at the first non-None result.

    Runs: once when a node agent is made, in the node process's event-loop thread, outside
    any transaction. The cache's ``get``/``put`` are then called in worker threads.

    Args:
        settings: directory, memory and disk bounds the node was configured with.

    Returns:
        An object with the :class:`wowlab_core.cache.ConfigCache` interface, or None for
        the built-in memory + disk cache.
    """


# --- access ---------------------------------------------------------------------------


@hookspec
def wowlab_can_use_node(
    user: User, node: Node, grants: Sequence[NodeAccess], job: SimJob | None
) -> bool | None:
    """Veto a user's use of a node that the grants allow. Any False denies.

    Only asked when the grants already allow the use; a plugin cannot widen access.

    Runs: inside the leasing transaction of a node's request (on SQLite it holds the
    database's write lock), and when the portal lists usable nodes: it must answer from
    memory or a fast query, never from a slow outside service.

    Args:
        user: who wants to run work on the node.
        node: the node; ``node.labels`` holds its labels (a list of strings or None) and
            ``node.engines`` the engines it runs.
        grants: the node's access rows.
        job: the job whose chunks the node would run (its ``engine``, ``config_hash``,
            ``user_id`` ...), or None when the question is about the node in general
            (listing the nodes a user may use).

    Returns:
        False to deny, True or None to have no objection.
    """


@hookspec
def wowlab_user_groups(user: User) -> Sequence[int] | None:
    """Add guild memberships from outside wowlab (a guild roster service, Discord roles ...).

    Runs: where access is resolved: inside the leasing transaction of a node's request,
    and in portal requests. Cache the outside answer; do not call a slow service here.

    Args:
        user: the user whose groups are resolved.

    Returns:
        Guild ids the user counts as a member of, in addition to ``guild_members`` rows.
    """


# --- portal ---------------------------------------------------------------------------


@hookspec
def wowlab_portal_routers(app: FastAPI) -> None:
    """Add routes to the portal (an API router, pages, a bridge's endpoints).

    Called once while the portal starts, after ``app.state`` holds ``hooks``, ``db`` and
    ``coordinator``; routes that need them read them from ``request.app.state``.

    Runs: once, in the portal's event-loop thread, during its startup (the lifespan),
    outside any transaction.

    Args:
        app: the portal's FastAPI application; call ``app.include_router(...)``.
    """


@hookspec
def wowlab_portal_services(app: FastAPI) -> Sequence[PortalService] | None:
    """Run a service inside the portal for as long as it serves (a transport's server side).

    Each service is an async callable ``service(*, task_status)`` that the portal starts
    with ``await task_group.start(service)`` after the routers are added: it calls
    ``task_status.started()`` once it serves (an exception before that stops the portal
    from starting, with that error), then runs until it is cancelled when the portal stops.
    Read what you need from ``app.state`` (``settings``, ``hooks``, ``db``, ``coordinator``).

    Runs: once per portal start, in the portal's event-loop thread, outside any
    transaction. The services run in the event loop: blocking work goes to
    ``anyio.to_thread``.

    Args:
        app: the portal's FastAPI application.

    Returns:
        The services to run (none: None or an empty list).
    """


# --- events ---------------------------------------------------------------------------


@hookspec
def wowlab_chunk_completed(chunk: SimChunk, result: ChunkResult) -> None:
    """Called once per chunk when its result is accepted (never for duplicates).

    Runs: in the event thread (one per process), after the result was committed (outside
    any transaction), never in the request of the node that completed the chunk; events
    reach listeners in the order they happened. It may block (a webhook), but every later
    event waits for it. An exception is logged and ignored.

    Args:
        chunk: the completed chunk.
        result: its exact result.
    """


@hookspec
def wowlab_job_finished(job: SimJob) -> None:
    """Called once when a job reaches completed, failed or cancelled.

    Runs: like ``wowlab_chunk_completed``: in the event thread, after the commit (outside
    any transaction), after the job's chunk events; it may block, and exceptions are
    logged and ignored.

    Args:
        job: the job; ``job.status`` tells how it ended, ``job.result`` holds the report.
    """


__all__ = [
    "hookimpl",
    "hookspec",
    "wowlab_can_use_node",
    "wowlab_chunk_completed",
    "wowlab_chunk_size",
    "wowlab_claim_code",
    "wowlab_config_cache",
    "wowlab_job_finished",
    "wowlab_node_claimed",
    "wowlab_node_removed",
    "wowlab_plan_chunks",
    "wowlab_portal_routers",
    "wowlab_portal_services",
    "wowlab_register_commands",
    "wowlab_register_engines",
    "wowlab_register_transports",
    "wowlab_user_groups",
]
