"""The typed facade through which wowlab calls its hooks: the only place that touches ``pm.hook``.

Plugins are kept apart: registration hooks (engines, transports, commands) are called plugin by
plugin, and a plugin that raises or registers something invalid is marked broken (with the
reason, for ``wowlab plugins``) and unregistered, while every other plugin keeps working. Event
hooks (``wowlab_chunk_completed``, ``wowlab_job_finished``) go through a queue and a worker
thread (:mod:`wowlab_core.events`) so that a slow listener never slows the request that caused
the event. Code that needs to listen for a while (the portal, a bridge) uses
:meth:`Hooks.listen`.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import pluggy

from wowlab_core.errors import EngineUnavailable, TransportUnavailable
from wowlab_core.events import describe
from wowlab_core.plugin_state import (
    PluginProblem,
    PluginState,
    Provided,
    Stage,
    first_line,
    plugin_state,
    unknown_hooks,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wowlab_core.cache import CacheSettings, ConfigCache
    from wowlab_core.engines import Engine
    from wowlab_core.models import Node, NodeAccess, SimChunk, SimJob, User
    from wowlab_core.planning import Capacity, ChunkPlan
    from wowlab_core.results import ChunkResult
    from wowlab_core.transport import PortalService, TransportFactory

log = logging.getLogger(__name__)


class Hooks:
    """Typed facade over the hooks: the only place that calls ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.state = plugin_state(pm)

    # --- plumbing -------------------------------------------------------------------

    def _impls(self, hook_name: str, *, registration_order: bool = False) -> list[Any]:
        # pluggy's call order is the last registered first (tryfirst/trylast respected);
        # registration hooks go first come, first served, so a plugin that comes later
        # cannot take a name an earlier one (a built-in) has.
        caller = getattr(self.pm.hook, hook_name)
        impls = caller.get_hookimpls()
        ordered = impls if registration_order else list(reversed(impls))
        return [i for i in ordered if not (i.hookwrapper or i.wrapper)]

    def _call(self, impl: Any, hook_name: str, kwargs: dict[str, Any]) -> Any:
        if self.state.trace:
            shown = ", ".join(f"{k}={describe(kwargs[k])}" for k in impl.argnames)
            where = threading.current_thread().name
            sys.stderr.write(f"wowlab hook {hook_name} -> {impl.plugin_name}({shown}) [{where}]\n")
        return impl.function(**{k: kwargs[k] for k in impl.argnames})

    def broken(self, plugin_name: str, stage: Stage, reason: str) -> None:
        """Record ``plugin_name`` as broken and take it out of use."""
        dist = self.state.dists.get(plugin_name)
        fix = f"WOWLAB_DISABLE_PLUGINS={plugin_name}" + (
            f", or pip install --upgrade {dist}" if dist else ""
        )
        problem = PluginProblem(
            name=plugin_name,
            module=self.state.modules.get(plugin_name, plugin_name),
            stage=stage,
            reason=reason,
            fix=fix,
        )
        with self.state.lock:
            self.state.problems.append(problem)
            self.state.provided.pop(plugin_name, None)
        log.warning("plugin %s is broken (%s): %s", plugin_name, stage, reason)
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def _register_each(
        self, hook_name: str, attempt: Callable[[str], tuple[dict[str, Any], Callable[[], None]]]
    ) -> None:
        """Call a registration hook plugin by plugin. ``attempt(plugin)`` gives the hook's
        arguments and what to do once that plugin's call succeeded; a plugin that raises is
        marked broken and nothing it registered is kept."""
        for impl in self._impls(hook_name, registration_order=True):
            kwargs, commit = attempt(impl.plugin_name)
            try:
                self._call(impl, hook_name, kwargs)
            except Exception as exc:
                self.broken(impl.plugin_name, "register", f"{hook_name}: {first_line(exc)}")
                continue
            commit()

    @contextmanager
    def listen(self, plugin: object, *, name: str | None = None) -> Iterator[object]:
        """Register ``plugin`` (an object with ``@hookimpl`` methods) while the block runs.

        Its hooks must match the specs (a misspelt hook is a ``ValueError``). Events that
        were queued before the block ends may still reach it afterwards only if
        :meth:`flush_events` is not called; call it first when that matters.
        """
        registered = self.pm.register(plugin, name=name)
        problems = unknown_hooks(self.pm, plugin)
        if problems:
            self.pm.unregister(plugin)
            raise ValueError(f"{type(plugin).__name__}: {'; '.join(problems)}")
        try:
            yield plugin
        finally:
            if registered is not None and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)

    # --- registration ---------------------------------------------------------------

    def engines(self) -> dict[str, Engine]:
        """All registered engines by name (a plugin that registers a bad one is broken)."""
        found: dict[str, Engine] = {}
        owners: dict[str, str] = {}

        def attempt(plugin: str) -> tuple[dict[str, Any], Callable[[], None]]:
            mine: dict[str, Engine] = {}

            def register(engine: Engine) -> None:
                name = getattr(engine, "name", None)
                if not isinstance(name, str) or not name:
                    raise TypeError(f"engine {engine!r} has no name")
                if name in found or name in mine:
                    other = owners.get(name, plugin)
                    raise ValueError(f"an engine named {name!r} is registered by {other} already")
                mine[name] = engine

            def commit() -> None:
                found.update(mine)
                owners.update(dict.fromkeys(mine, plugin))
                self.state.provides(plugin).engines = sorted(mine)

            return {"register": register}, commit

        self._register_each("wowlab_register_engines", attempt)
        return found

    def engine(self, name: str | None) -> Engine:
        """The engine of that name (None: the default), or :class:`EngineUnavailable`."""
        engines = self.engines()
        if name is None:
            name = default_engine_name(engines)
            if name is None:
                raise EngineUnavailable("no engine is installed: pip install 'wowlab[engine]'")
        if name not in engines:
            known = ", ".join(sorted(engines)) or "none"
            message = f"unknown engine {name!r} (installed: {known})"
            # An engine may be missing because its plugin did not load: say which (the
            # reasons may name paths of the server: `wowlab plugins` shows them there).
            failed = sorted({p.name for p in self.state.problems})
            if failed:
                names = ", ".join(repr(n) for n in failed)
                message += f"; plugins that did not load: {names} (see `wowlab plugins`)"
            raise EngineUnavailable(message, field="engine")
        return engines[name]

    def transports(self) -> dict[str, TransportFactory]:
        """All registered transport factories by name."""
        found: dict[str, TransportFactory] = {}
        owners: dict[str, str] = {}

        def attempt(plugin: str) -> tuple[dict[str, Any], Callable[[], None]]:
            mine: dict[str, TransportFactory] = {}

            def register(name: str, factory: TransportFactory) -> None:
                if not isinstance(name, str) or not name:
                    raise TypeError(f"transport name {name!r} is not a string")
                if name in found or name in mine:
                    other = owners.get(name, plugin)
                    raise ValueError(f"a transport named {name!r} is registered by {other} already")
                if not callable(factory):
                    raise TypeError(f"transport {name!r} factory is not callable")
                mine[name] = factory

            def commit() -> None:
                found.update(mine)
                owners.update(dict.fromkeys(mine, plugin))
                self.state.provides(plugin).transports = sorted(mine)

            return {"register": register}, commit

        self._register_each("wowlab_register_transports", attempt)
        return found

    def transport(self, name: str) -> TransportFactory:
        """The transport factory of that name, or :class:`TransportUnavailable`."""
        transports = self.transports()
        if name not in transports:
            known = ", ".join(sorted(transports)) or "none"
            raise TransportUnavailable(
                f"unknown transport {name!r} (installed: {known})", field="transport"
            )
        return transports[name]

    def register_commands(self, cli: click.Group) -> None:
        """Let plugins add CLI commands; a plugin that fails, or takes a name already in
        use, adds none."""

        def attempt(plugin: str) -> tuple[dict[str, Any], Callable[[], None]]:
            scratch = click.Group(cli.name)

            def commit() -> None:
                for name in scratch.commands:
                    if name in cli.commands:
                        self.broken(plugin, "register", f"adds a command {name!r} that exists")
                        return
                cli.commands.update(scratch.commands)
                self.state.provides(plugin).commands = sorted(scratch.commands)

            return {"cli": scratch}, commit

        self._register_each("wowlab_register_commands", attempt)

    def inventory(self) -> dict[str, Provided]:
        """Call every registration hook once (finding broken plugins) and return what each
        plugin provides."""
        self.engines()
        self.transports()
        self.register_commands(click.Group("wowlab"))
        with self.state.lock:
            return dict(self.state.provided)

    # --- claim ----------------------------------------------------------------------

    def claim_code(self) -> str | None:
        """A plugin-made claim code, or None."""
        result: str | None = self.pm.hook.wowlab_claim_code()
        return result

    def node_claimed(self, *, node: Node, user: User) -> None:
        """Announce a claim (in the claiming thread, after the commit)."""
        self._deliver("wowlab_node_claimed", {"node": node, "user": user})

    def node_removed(self, *, node_id: int, user: User | None) -> None:
        """Announce that a node was removed (in the removing thread, after the commit)."""
        self._deliver("wowlab_node_removed", {"node_id": node_id, "user": user})

    # --- scheduler ------------------------------------------------------------------

    def plan_chunks(self, *, job: SimJob, capacity: Capacity) -> Sequence[ChunkPlan] | None:
        """A plugin's chunk plan, or None."""
        result: Sequence[ChunkPlan] | None = self.pm.hook.wowlab_plan_chunks(
            job=job, capacity=capacity
        )
        return result

    def chunk_size(self, *, job: SimJob, capacity: Capacity) -> int | None:
        """A plugin's chunk size, or None."""
        result: int | None = self.pm.hook.wowlab_chunk_size(job=job, capacity=capacity)
        return result

    # --- cache ----------------------------------------------------------------------

    def config_cache(self, *, settings: CacheSettings) -> ConfigCache | None:
        """A plugin-provided config cache, or None."""
        result: ConfigCache | None = self.pm.hook.wowlab_config_cache(settings=settings)
        return result

    # --- access ---------------------------------------------------------------------

    def can_use_node(
        self,
        *,
        user: User,
        node: Node,
        grants: Sequence[NodeAccess],
        job: SimJob | None = None,
    ) -> bool:
        """False if any plugin vetoes the use (of the node in general, or for ``job``)."""
        answers = self.pm.hook.wowlab_can_use_node(user=user, node=node, grants=grants, job=job)
        return all(answer is not False for answer in answers)

    def has_access_veto(self) -> bool:
        """Whether any plugin implements ``wowlab_can_use_node`` (lets queries skip the check)."""
        return bool(self.pm.hook.wowlab_can_use_node.get_hookimpls())

    def user_groups(self, *, user: User) -> set[int]:
        """Extra guild ids from plugins."""
        groups: set[int] = set()
        for answer in self.pm.hook.wowlab_user_groups(user=user):
            if answer:
                groups.update(int(g) for g in answer)
        return groups

    def has_user_groups(self) -> bool:
        """Whether any plugin implements ``wowlab_user_groups``."""
        return bool(self.pm.hook.wowlab_user_groups.get_hookimpls())

    # --- portal ---------------------------------------------------------------------

    def portal_routers(self, *, app: FastAPI) -> None:
        """Let plugins add routes to the portal."""
        self.pm.hook.wowlab_portal_routers(app=app)

    def portal_services(self, *, app: FastAPI) -> list[PortalService]:
        """The services plugins run inside the portal (a transport's server side)."""
        services: list[PortalService] = []
        for answer in self.pm.hook.wowlab_portal_services(app=app):
            if answer:
                services.extend(answer)
        return services

    # --- events ---------------------------------------------------------------------

    def chunk_completed(self, *, chunk: SimChunk, result: ChunkResult) -> None:
        """Announce an accepted chunk result (queued: listeners run in the event thread)."""
        self._queue("wowlab_chunk_completed", {"chunk": chunk, "result": result})

    def job_finished(self, *, job: SimJob) -> None:
        """Announce a finished job (queued: listeners run in the event thread)."""
        self._queue("wowlab_job_finished", {"job": job})

    def has_event_listeners(self) -> bool:
        """Whether any plugin listens for chunk or job events."""
        return bool(
            self.pm.hook.wowlab_chunk_completed.get_hookimpls()
            or self.pm.hook.wowlab_job_finished.get_hookimpls()
        )

    def has_chunk_listeners(self) -> bool:
        """Whether any plugin listens for ``wowlab_chunk_completed`` (completions skip
        building its chunk snapshots otherwise)."""
        return bool(self.pm.hook.wowlab_chunk_completed.get_hookimpls())

    def flush_events(self, timeout: float | None = None) -> bool:
        """Wait until every queued event reached its listeners. False on timeout."""
        return self.state.events.flush(timeout)

    def _queue(self, hook_name: str, kwargs: dict[str, Any]) -> None:
        impls = self._impls(hook_name)
        if impls:  # the listeners of now, not of when the event thread gets to it
            self.state.events.put(functools.partial(self._deliver, hook_name, kwargs, impls))

    def _deliver(
        self, hook_name: str, kwargs: dict[str, Any], impls: list[Any] | None = None
    ) -> None:
        # A listener must not break the coordinator or the other listeners: log and go on.
        for impl in self._impls(hook_name) if impls is None else impls:
            if impls is not None and not self.pm.is_registered(impl.plugin):
                continue  # stopped listening meanwhile
            try:
                self._call(impl, hook_name, kwargs)
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)


def default_engine_name(engines: dict[str, Engine]) -> str | None:
    """The engine ``wowlab sim`` uses when none is named: ``numba`` if present."""
    for preferred in ("numba", "reference"):
        if preferred in engines:
            return preferred
    return sorted(engines)[0] if engines else None


__all__ = [
    "Hooks",
    "PluginProblem",
    "PluginState",
    "Provided",
    "default_engine_name",
    "first_line",
    "plugin_state",
    "unknown_hooks",
]
