"""Hook specifications of wowlab (pluggy project name ``wowlab``).

A plugin implements any of these with ``@hookimpl`` and is found through the entry-point
group ``wowlab`` (built-in plugins are listed in ``wowlab_core.plugins.DEFAULT_PLUGINS``).
Call hooks through :class:`wowlab_core.plugins.Hooks`, never ``pm.hook`` directly.
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
    from wowlab_core.transport import TransportFactory

hookspec = pluggy.HookspecMarker("wowlab")
hookimpl = pluggy.HookimplMarker("wowlab")


# --- registration ---------------------------------------------------------------------


@hookspec
def wowlab_register_engines(register: Callable[[Engine], None]) -> None:
    """Contribute combat engines.

    Args:
        register: call it once per engine object; its ``name`` must be unique.
    """


@hookspec
def wowlab_register_transports(register: Callable[[str, TransportFactory], None]) -> None:
    """Contribute node transports.

    Args:
        register: call ``register(name, factory)``; ``factory(url, **options)`` returns a
            :class:`wowlab_core.transport.NodeTransport`. Names must be unique.
    """


@hookspec
def wowlab_register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``wowlab`` CLI.

    Args:
        cli: the top-level click group; call ``cli.add_command(...)``.
    """


# --- claim ----------------------------------------------------------------------------


@hookspec(firstresult=True)
def wowlab_claim_code() -> str | None:
    """Make a new claim code for a registering node.

    The code must use the claim-code alphabet (see :mod:`wowlab_core.claim_codes`) and be
    6 characters long. Stops at the first non-None result.

    Returns:
        The code, or None to let the next plugin (finally the built-in generator) decide.
    """


@hookspec
def wowlab_node_claimed(node: Node, user: User) -> None:
    """Called after ``user`` has claimed ``node`` (the claim is committed).

    Args:
        node: the claimed node (its ``user_id`` is now set).
        user: the new owner.
    """


# --- scheduler ------------------------------------------------------------------------


@hookspec(firstresult=True)
def wowlab_plan_chunks(job: SimJob, capacity: Capacity) -> Sequence[ChunkPlan] | None:
    """Cut a job into chunks. Stops at the first non-None result.

    The chunks must tile ``[0, job.total_iterations)`` (or the new round's range for a
    ``target_error`` job, starting at ``capacity.start``) with no gap or overlap.

    Args:
        job: the job being planned (not yet flushed chunks).
        capacity: the pool that may run it: eligible nodes, workers, measured throughput.

    Returns:
        The chunk plans, or None to fall through to the built-in planner.
    """


@hookspec(firstresult=True)
def wowlab_chunk_size(job: SimJob, capacity: Capacity) -> int | None:
    """Choose the iterations per chunk for the built-in planner. Stops at the first non-None result.

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

    Args:
        settings: directory, memory and disk bounds the node was configured with.

    Returns:
        An object with the :class:`wowlab_core.cache.ConfigCache` interface, or None for
        the built-in memory + disk cache.
    """


# --- access ---------------------------------------------------------------------------


@hookspec
def wowlab_can_use_node(user: User, node: Node, grants: Sequence[NodeAccess]) -> bool | None:
    """Veto a user's use of a node that the grants allow. Any False denies.

    Only asked when the grants already allow the use; a plugin cannot widen access.

    Args:
        user: who wants to run work on the node.
        node: the node.
        grants: the node's access rows.

    Returns:
        False to deny, True or None to have no objection.
    """


@hookspec
def wowlab_user_groups(user: User) -> Sequence[int] | None:
    """Add guild memberships from outside wowlab (a guild roster service, Discord roles ...).

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

    Args:
        app: the portal's FastAPI application; call ``app.include_router(...)``.
    """


# --- events ---------------------------------------------------------------------------


@hookspec
def wowlab_chunk_completed(chunk: SimChunk, result: ChunkResult) -> None:
    """Called once per chunk when its result is accepted (never for duplicates).

    Args:
        chunk: the completed chunk.
        result: its exact result.
    """


@hookspec
def wowlab_job_finished(job: SimJob) -> None:
    """Called once when a job reaches completed, failed or cancelled.

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
    "wowlab_plan_chunks",
    "wowlab_portal_routers",
    "wowlab_register_commands",
    "wowlab_register_engines",
    "wowlab_register_transports",
    "wowlab_user_groups",
]
