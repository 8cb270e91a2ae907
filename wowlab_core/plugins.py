"""The plugin manager: the built-in plugins, the entry points, and what could not be loaded.

Built-in features are plugins too: :data:`DEFAULT_PLUGINS` lists the core's own modules;
the optional packages (engine, transports, GUI, portal) and third-party plugins are found
through the entry-point group ``wowlab``, loaded once. Each plugin is checked on its own: one
that fails to import (a missing dependency: *unavailable*; anything else: *broken*) or whose
hooks do not match the specs (a misspelt hook name, a wrong argument name: *broken*) is
recorded with the reason and the pip command that fixes it, and the others load normally.
Registration hooks are isolated the same way at call time (:mod:`wowlab_core.hooks`).

Environment switches:
    ``WOWLAB_DISABLE_PLUGINS``: comma-separated entry-point names not to load (``*``: all).
    ``WOWLAB_LOAD_PLUGINS``: comma-separated allow-list of entry-point names.
    ``WOWLAB_TRACE_PLUGINS``: print every hook call to stderr, event listeners included.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from wowlab_core import hookspecs
from wowlab_core.hooks import (
    Hooks,
    PluginProblem,
    Provided,
    default_engine_name,
    first_line,
    plugin_state,
    unknown_hooks,
)

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

#: Kept for code written against the first plugin API: a problem is a :class:`PluginProblem`.
UnavailablePlugin = PluginProblem


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin, as ``wowlab plugins`` lists it."""

    name: str
    module: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    dist: str | None = None

    def to_dict(self, provided: Provided | None = None) -> dict[str, Any]:
        """JSON-ready form, with what the plugin provides if known."""
        out: dict[str, Any] = {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "hooks": list(self.hooks),
            "builtin": self.builtin,
        }
        if provided is not None:
            out |= {
                "engines": provided.engines,
                "transports": provided.transports,
                "commands": provided.commands,
            }
        return out


@dataclass
class PluginRegistry:
    """The plugin manager together with what was loaded and what was not."""

    pm: pluggy.PluginManager
    loaded: list[PluginInfo] = field(default_factory=list)

    @property
    def problems(self) -> list[PluginProblem]:
        """Plugins not in use: unavailable or broken (found at load or at call time)."""
        return list(plugin_state(self.pm).problems)

    @property
    def unavailable(self) -> list[PluginProblem]:
        """Plugins whose dependencies are not installed."""
        return [p for p in self.problems if p.kind == "unavailable"]

    @property
    def broken(self) -> list[PluginProblem]:
        """Plugins that are faulty themselves."""
        return [p for p in self.problems if p.kind == "broken"]

    @property
    def in_use(self) -> list[PluginInfo]:
        """Loaded plugins that have not been found broken since."""
        bad = {p.name for p in self.problems}
        return [p for p in self.loaded if p.name not in bad]

    def hooks(self) -> Hooks:
        """The typed facade over this registry's plugin manager."""
        return Hooks(self.pm)


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> tuple[str, str | None]:
    """``("PyJWT", None)`` from ``PyJWT>=2``; ``("numba", "engine")`` from
    ``numba>=0.60; extra == "engine"``."""
    name = re.split(r"[\s;<>=!~\[(@]", requirement.strip(), maxsplit=1)[0]
    extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
    return name, extra.group(1) if extra else None


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _missing_dependency_fix(missing: str, dist: str | None) -> str | None:
    """The pip command that brings the import ``missing``, from distribution metadata."""
    providers = metadata.packages_distributions().get(missing)
    if providers:  # installed but broken, or provided under another import name
        return f"pip install --force-reinstall {providers[0]}"
    if dist is None:
        return None
    wanted = _normalize(missing)
    candidates: list[tuple[str, str | None]] = []
    for requirement in metadata.requires(dist) or []:
        name, extra = _requirement_name(requirement)
        if not _installed(name):
            candidates.append((name, extra))
    named = [
        c
        for c in candidates
        if _normalize(c[0]) in (wanted, f"py{wanted}", f"python-{wanted}", f"{wanted}-python")
    ]
    chosen = named[0] if named else candidates[0] if len(candidates) == 1 else None
    if chosen is None:
        return None
    name, extra = chosen
    return f"pip install '{dist}[{extra}]'" if extra else f"pip install {name}"


def fix_for(module: str, dist: str | None, exc: BaseException) -> tuple[str, bool]:
    """The pip command that fixes a failed import, and whether a dependency is missing."""
    top = module.split(".", 1)[0]
    missing = getattr(exc, "name", None)
    missing_top = missing.split(".", 1)[0] if missing else None
    if top in EXTRAS and isinstance(exc, ImportError):
        return f"pip install 'wowlab[{EXTRAS[top]}]'", True
    if isinstance(exc, ModuleNotFoundError) and missing_top and missing_top != top:
        found = _missing_dependency_fix(missing_top, dist)
        return found or f"pip install {missing_top}", True
    return f"pip install --force-reinstall {dist or top}", False


def _version_of(module: object, dist: str | None) -> str:
    if dist:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if isinstance(module, ModuleType):
        return str(getattr(module, "__version__", "")) or "unknown"
    return "unknown"


def _core_version() -> str:
    try:
        return metadata.version("wowlab")
    except metadata.PackageNotFoundError:
        return "unknown"


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    callers = pm.get_hookcallers(plugin) or []
    return tuple(sorted(c.name for c in callers))


def build_registry(*, load_entry_points: bool = True) -> PluginRegistry:
    """Create a plugin manager with the built-in plugins and (optionally) the entry points."""
    pm = pluggy.PluginManager("wowlab")
    pm.add_hookspecs(hookspecs)
    registry = PluginRegistry(pm=pm)
    if plugin_state(pm).trace:
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(str(msg)))
        pm.enable_tracing()
    core_version = _core_version()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        _add(registry, module, module_name, module_name, None, version=core_version)
    if load_entry_points:
        _load_entry_points(registry)
    pm.check_pending()
    return registry


def _add(
    registry: PluginRegistry,
    plugin: object,
    name: str,
    module: str,
    dist: str | None,
    *,
    version: str | None = None,
) -> None:
    """Register one plugin and check its hooks against the specs; a mismatch makes it broken.

    ``version`` is given for the built-in plugins (the core's version), which are the only
    ones registered without a distribution.
    """
    pm = registry.pm
    state = plugin_state(pm)
    state.modules[name] = module
    if dist:
        state.dists[name] = dist
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        # A hook whose arguments are not the spec's, or a name registered twice.
        Hooks(pm).broken(name, "validate", _validation_reason(pm, exc))
        return
    problems = unknown_hooks(pm, plugin)
    if problems:
        Hooks(pm).broken(name, "validate", "; ".join(problems))
        return
    builtin = version is not None
    registry.loaded.append(
        PluginInfo(
            name,
            module,
            version or _version_of(plugin, dist),
            _hook_names(pm, plugin),
            builtin,
            dist=dist,
        )
    )


def _validation_reason(pm: pluggy.PluginManager, exc: Exception) -> str:
    """pluggy's validation message, shortened to what a plugin author needs."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    hook = re.search(r"for hook '(\w+)'", text)
    args = re.search(r"Argument\(s\) \{(.*?)\}", text)
    if hook and args:
        caller = getattr(pm.hook, hook.group(1), None)
        spec = caller.spec if caller is not None else None
        known = ", ".join(spec.argnames) if spec is not None else "?"
        return (
            f"{hook.group(1)} takes {args.group(1)}, which the hook does not pass "
            f"(it passes: {known})"
        )
    return text


def _load_entry_points(registry: PluginRegistry) -> None:
    disabled = _env_names("WOWLAB_DISABLE_PLUGINS") or set()
    allowed = _env_names("WOWLAB_LOAD_PLUGINS")
    if "*" in disabled:
        return
    state = plugin_state(registry.pm)
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
        except Exception as exc:  # a dependency missing, or a broken plugin
            fix, missing = fix_for(ep.value, dist, exc)
            problem = PluginProblem(
                name=ep.name,
                module=ep.value,
                stage="import",
                reason=first_line(exc),
                fix=fix,
                kind="unavailable" if missing else "broken",
            )
            state.problems.append(problem)
            log.debug("plugin %s %s: %s", ep.name, problem.kind, problem.reason)
            continue
        if registry.pm.is_registered(plugin):
            continue
        _add(registry, plugin, ep.name, ep.value, dist)


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


def get_hooks() -> Hooks:
    """The facade over the process-wide registry."""
    return Hooks(get_registry().pm)


__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "EXTRAS",
    "Hooks",
    "PluginInfo",
    "PluginProblem",
    "PluginRegistry",
    "UnavailablePlugin",
    "build_registry",
    "default_engine_name",
    "fix_for",
    "get_hooks",
    "get_registry",
    "reset_registry",
]
