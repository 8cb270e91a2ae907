"""The plugin manager, the built-in plugins, and the typed facade through which hooks are called.

Built-in features are plugins too: :data:`DEFAULT_PLUGINS` lists the core's own modules;
the optional packages (engine, transports, GUI, portal) and third-party plugins are found
through the entry-point group ``wowlab``, loaded once. A plugin that fails to import is
recorded as unavailable with the reason and the pip command that fixes it.

Environment switches:
    ``WOWLAB_DISABLE_PLUGINS``: comma-separated entry-point names not to load (``*``: all).
    ``WOWLAB_LOAD_PLUGINS``: comma-separated allow-list of entry-point names.
    ``WOWLAB_TRACE_PLUGINS``: print every hook call to stderr.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from wowlab_core import hookspecs
from wowlab_core.errors import EngineUnavailable, TransportUnavailable

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI

    from wowlab_core.cache import CacheSettings, ConfigCache
    from wowlab_core.engines import Engine
    from wowlab_core.models import Node, NodeAccess, SimChunk, SimJob, User
    from wowlab_core.planning import Capacity, ChunkPlan
    from wowlab_core.results import ChunkResult
    from wowlab_core.transport import TransportFactory

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "wowlab"

#: The core's own plugins, registered before any entry point.
DEFAULT_PLUGINS: tuple[str, ...] = ("wowlab_core.transport_local", "wowlab_core.http_client")

#: Which extra of the ``wowlab`` distribution brings each optional package.
EXTRAS: dict[str, str] = {
    "wowlab_engine": "engine",
    "wowlab_transport_mqtt": "mqtt",
    "wowlab_transport_supabase": "supabase",
    "wowlab_gui_qt": "gui",
    "wowlab_portal": "portal",
}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin, as ``wowlab plugins`` lists it."""

    name: str
    module: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "hooks": list(self.hooks),
            "builtin": self.builtin,
        }


@dataclass(frozen=True)
class UnavailablePlugin:
    """A plugin that could not be loaded, why, and how to fix it."""

    name: str
    module: str
    reason: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "module": self.module, "reason": self.reason, "fix": self.fix}


@dataclass
class PluginRegistry:
    """The plugin manager together with what was loaded and what was not."""

    pm: pluggy.PluginManager
    loaded: list[PluginInfo] = field(default_factory=list)
    unavailable: list[UnavailablePlugin] = field(default_factory=list)


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _fix_for(module: str, dist: str | None, exc: BaseException) -> str:
    top = module.split(".", 1)[0]
    if top in EXTRAS:
        return f"pip install 'wowlab[{EXTRAS[top]}]'"
    missing = getattr(exc, "name", None)
    if missing and missing.split(".", 1)[0] != top:
        return f"pip install {missing.split('.', 1)[0]}"
    return f"pip install --force-reinstall {dist or top}"


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    callers = pm.get_hookcallers(plugin) or []
    return tuple(sorted(c.name for c in callers))


def _version_of(module: ModuleType, dist: str | None) -> str:
    if dist:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", "")) or "unknown"


def build_registry(*, load_entry_points: bool = True) -> PluginRegistry:
    """Create a plugin manager with the built-in plugins and (optionally) the entry points."""
    pm = pluggy.PluginManager("wowlab")
    pm.add_hookspecs(hookspecs)
    registry = PluginRegistry(pm=pm)
    if os.environ.get("WOWLAB_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(str(msg)))
        pm.enable_tracing()
    core_version = _core_version()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        registry.loaded.append(
            PluginInfo(module_name, module_name, core_version, _hook_names(pm, module), True)
        )
    if load_entry_points:
        _load_entry_points(registry)
    pm.check_pending()
    return registry


def _core_version() -> str:
    try:
        return metadata.version("wowlab")
    except metadata.PackageNotFoundError:
        return "unknown"


def _load_entry_points(registry: PluginRegistry) -> None:
    disabled = _env_names("WOWLAB_DISABLE_PLUGINS") or set()
    allowed = _env_names("WOWLAB_LOAD_PLUGINS")
    if "*" in disabled:
        return
    seen: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (
            ep.name in seen
            or ep.name in disabled
            or (allowed is not None and ep.name not in allowed)
        ):
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist is not None else None
        try:
            plugin = ep.load()
        except Exception as exc:  # an optional dependency missing, or a broken plugin
            reason = f"{type(exc).__name__}: {exc}"
            registry.unavailable.append(
                UnavailablePlugin(ep.name, ep.value, reason, _fix_for(ep.value, dist, exc))
            )
            log.debug("plugin %s unavailable: %s", ep.name, reason)
            continue
        if registry.pm.is_registered(plugin):
            continue
        registry.pm.register(plugin, name=ep.name)
        version = _version_of(plugin, dist) if isinstance(plugin, ModuleType) else "unknown"
        registry.loaded.append(
            PluginInfo(ep.name, ep.value, version, _hook_names(registry.pm, plugin), False)
        )


_lock = threading.Lock()
_registry: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = build_registry()
        return _registry


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin)."""
    global _registry
    with _lock:
        _registry = None


class Hooks:
    """Typed facade over the hooks: the only place that calls ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    # registration
    def engines(self) -> dict[str, Engine]:
        """All registered engines by name."""
        found: dict[str, Engine] = {}

        def register(engine: Engine) -> None:
            name = getattr(engine, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"engine {engine!r} has no name")
            if name in found:
                raise ValueError(f"two plugins register an engine named {name!r}")
            found[name] = engine

        self.pm.hook.wowlab_register_engines(register=register)
        return found

    def engine(self, name: str | None) -> Engine:
        """The engine of that name (None: the default), or :class:`EngineUnavailable`."""
        engines = self.engines()
        if name is None:
            name = default_engine_name(engines)
            if name is None:
                raise EngineUnavailable("no engine is installed; run: pip install 'wowlab[engine]'")
        if name not in engines:
            known = ", ".join(sorted(engines)) or "none"
            raise EngineUnavailable(f"unknown engine {name!r} (installed: {known})", field="engine")
        return engines[name]

    def transports(self) -> dict[str, TransportFactory]:
        """All registered transport factories by name."""
        found: dict[str, TransportFactory] = {}

        def register(name: str, factory: TransportFactory) -> None:
            if name in found:
                raise ValueError(f"two plugins register a transport named {name!r}")
            if not callable(factory):
                raise TypeError(f"transport {name!r} factory is not callable")
            found[name] = factory

        self.pm.hook.wowlab_register_transports(register=register)
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
        """Let plugins add CLI commands."""
        self.pm.hook.wowlab_register_commands(cli=cli)

    # claim
    def claim_code(self) -> str | None:
        """A plugin-made claim code, or None."""
        result: str | None = self.pm.hook.wowlab_claim_code()
        return result

    def node_claimed(self, *, node: Node, user: User) -> None:
        """Announce a claim."""
        self._notify("wowlab_node_claimed", node=node, user=user)

    # scheduler
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

    # cache
    def config_cache(self, *, settings: CacheSettings) -> ConfigCache | None:
        """A plugin-provided config cache, or None."""
        result: ConfigCache | None = self.pm.hook.wowlab_config_cache(settings=settings)
        return result

    # access
    def can_use_node(self, *, user: User, node: Node, grants: Sequence[NodeAccess]) -> bool:
        """False if any plugin vetoes the use."""
        answers = self.pm.hook.wowlab_can_use_node(user=user, node=node, grants=grants)
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

    # portal
    def portal_routers(self, *, app: FastAPI) -> None:
        """Let plugins add routes to the portal."""
        self.pm.hook.wowlab_portal_routers(app=app)

    # events
    def chunk_completed(self, *, chunk: SimChunk, result: ChunkResult) -> None:
        """Announce an accepted chunk result."""
        self._notify("wowlab_chunk_completed", chunk=chunk, result=result)

    def job_finished(self, *, job: SimJob) -> None:
        """Announce a finished job."""
        self._notify("wowlab_job_finished", job=job)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        # An event listener must not break the coordinator: log its failure and go on.
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)


def default_engine_name(engines: dict[str, Engine]) -> str | None:
    """The engine ``wowlab sim`` uses when none is named: ``numba`` if present."""
    for preferred in ("numba", "reference"):
        if preferred in engines:
            return preferred
    return sorted(engines)[0] if engines else None


def get_hooks() -> Hooks:
    """The facade over the process-wide registry."""
    return Hooks(get_registry().pm)


__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "EXTRAS",
    "Hooks",
    "PluginInfo",
    "PluginRegistry",
    "UnavailablePlugin",
    "build_registry",
    "default_engine_name",
    "get_hooks",
    "get_registry",
    "reset_registry",
]
