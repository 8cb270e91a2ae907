"""What the plugin facade keeps per plugin manager: the plugins that are not in use (broken or
unavailable, with the reason and the fix), what each plugin provides, and the event queue."""

from __future__ import annotations

import difflib
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Literal

import pluggy

from wowlab_core import hookspecs
from wowlab_core.events import EventQueue

Stage = Literal["import", "validate", "register"]
HOOK_NAMES = frozenset(n for n in hookspecs.__all__ if n.startswith("wowlab_"))


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that is not in use: why, and how to fix it.

    ``kind`` is ``unavailable`` (a dependency or extra is not installed) or ``broken`` (the
    plugin itself is faulty); ``stage`` says when it was found: ``import``, ``validate``
    (hook names and arguments checked against the specs) or ``register``.
    """

    name: str
    module: str
    stage: Stage
    reason: str
    fix: str
    kind: Literal["unavailable", "broken"] = "broken"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "module": self.module,
            "kind": self.kind,
            "stage": self.stage,
            "reason": self.reason,
            "fix": self.fix,
        }


@dataclass
class Provided:
    """What one plugin contributes, as ``wowlab plugins`` shows it."""

    engines: list[str] = field(default_factory=list)
    transports: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@dataclass
class PluginState:
    """What the facade keeps per plugin manager: problems, contributions, the event queue."""

    trace: bool = False
    problems: list[PluginProblem] = field(default_factory=list)
    provided: dict[str, Provided] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    dists: dict[str, str] = field(default_factory=dict)
    events: EventQueue = field(default_factory=EventQueue)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def provides(self, plugin: str) -> Provided:
        """The contributions recorded for ``plugin``."""
        return self.provided.setdefault(plugin, Provided())


_states: weakref.WeakKeyDictionary[pluggy.PluginManager, PluginState] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def plugin_state(pm: pluggy.PluginManager) -> PluginState:
    """The facade's state for ``pm`` (made on first use)."""
    with _states_lock:
        state = _states.get(pm)
        if state is None:
            state = _states[pm] = PluginState(trace=bool(os.environ.get("WOWLAB_TRACE_PLUGINS")))
        return state


def unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Reasons for the hook implementations of ``plugin`` that match no hook spec."""
    reasons = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin and not i.optionalhook]
        if impls:
            close = difflib.get_close_matches(caller.name, sorted(HOOK_NAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            reasons.append(f"unknown hook {caller.name!r}{hint}")
    return reasons


def first_line(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = [
    "HOOK_NAMES",
    "PluginProblem",
    "PluginState",
    "Provided",
    "Stage",
    "first_line",
    "plugin_state",
    "unknown_hooks",
]
