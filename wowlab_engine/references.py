"""Name resolution and the trigger graph of a config, with errors naming the JSON path."""

from __future__ import annotations

import difflib
from typing import Any

from wowlab_core.errors import ConfigInvalid
from wowlab_engine.config import SimConfig

#: Most spells one cast may set off at one instant (triggers and procs, all targets).
MAX_TRIGGERED = 4096


def ms(seconds: float) -> int:
    """Seconds in the config to integer milliseconds in the kernel (rounded)."""
    return round(seconds * 1000.0)


def fail(path: str, message: str) -> ConfigInvalid:
    """The error for ``path``: its message starts with the path, its ``field`` is the path."""
    return ConfigInvalid(f"{path}: {message}", field=path)


class NameResolver:
    """Name lookups that raise ConfigInvalid naming the JSON path."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.resources = self._unique([r.name for r in cfg.actor.resources], "actor.resources")
        self.spells = self._unique([s.name for s in cfg.spells], "spells")
        aura_names = [a.name for a in cfg.auras]
        self._unique(aura_names, "auras")
        for i, spell in enumerate(cfg.spells):
            if spell.channel is not None:
                if spell.name in aura_names:
                    raise fail(
                        f"spells[{i}].name",
                        f"channelled spell '{spell.name}' clashes with an aura name",
                    )
                aura_names.append(spell.name)
        self.auras = {name: i for i, name in enumerate(aura_names)}
        self.target_auras = frozenset(a.name for a in cfg.auras if a.on == "target")
        self.periodic = {a.name for a in cfg.auras if a.periodic} | {
            s.name for s in cfg.spells if s.channel
        }

    @staticmethod
    def _unique(names: list[str], path: str) -> dict[str, int]:
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                raise fail(f"{path}[{i}].name", f"duplicate name '{name}'")
            seen[name] = i
        return seen

    def lookup(self, table: dict[str, int], kind: str, name: str, path: str) -> int:
        if name not in table:
            close = difflib.get_close_matches(name, list(table), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise fail(path, f"unknown {kind} '{name}'{hint}")
        return table[name]

    def spell(self, name: str, path: str) -> int:
        return self.lookup(self.spells, "spell", name, path)

    def aura(self, name: str, path: str) -> int:
        return self.lookup(self.auras, "aura", name, path)

    def resource(self, name: str, path: str) -> int:
        return self.lookup(self.resources, "resource", name, path)

    def abilities(self, name: str, path: str) -> list[int]:
        """Ability rows of a spell or aura name (both if a spell and an aura share it)."""
        rows = []
        if name in self.spells:
            rows.append(self.spells[name])
        if name in self.auras:
            rows.append(len(self.spells) + self.auras[name])
        if not rows:
            names = {**self.spells, **self.auras}
            self.lookup(names, "spell or aura", name, path)
        return rows


def check_triggers(cfg: SimConfig, res: NameResolver, a: dict[str, Any]) -> int:
    """Reject cycles of spells set off at one instant; return the work-stack size needed.

    Edges: a spell triggers a spell; a spell's cast / hit / crit can fire a proc that
    triggers a spell. A proc with an internal cooldown fires at most once per instant, so
    it cannot close a cycle.
    """
    n_s = len(cfg.spells)
    # edges[s] = list of (child spell, multiplicity, path of the edge)
    edges: list[list[tuple[int, int, str]]] = [[] for _ in range(n_s)]
    for s, sp in enumerate(cfg.spells):
        for j, name in enumerate(sp.trigger):
            edges[s].append((res.spells[name], 1, f"spells[{s}].trigger[{j}]"))
    for i, pr in enumerate(cfg.procs):
        child = int(a["pr_spell"][i])
        if child < 0 or pr.on == "tick" or pr.icd > 0:
            continue
        for s in range(n_s):
            if a["pr_mask"][i, s]:
                hits = int(a["sp_targets"][s]) if pr.on != "cast" else 1
                edges[s].append((child, min(hits, cfg.fight.targets), f"procs[{i}].trigger"))
    state = [0] * n_s  # 0 new, 1 on the path, 2 done
    size = [0] * n_s

    def visit(s: int, path: list[int]) -> int:
        if state[s] == 2:
            return size[s]
        state[s] = 1
        total = 1
        for child, mult, where in edges[s]:
            if state[child] == 1:
                chain = [*path, s]
                names = [cfg.spells[x].name for x in [*chain[chain.index(child) :], child]]
                raise fail(where, "cycle of triggered spells: " + " -> ".join(names))
            total += mult * visit(child, [*path, s])
            if total > MAX_TRIGGERED:
                raise fail(
                    f"spells[{s}].trigger",
                    f"'{cfg.spells[s].name}' can set off more than {MAX_TRIGGERED} spells at once",
                )
        state[s] = 2
        size[s] = total
        return total

    worst = 1
    for s in range(n_s):
        worst = max(worst, visit(s, []))
    tick_worst = 0
    for i in range(len(cfg.procs)):
        child = int(a["pr_spell"][i])
        if child >= 0:
            tick_worst += 2 * visit(child, [])
    return min(worst + tick_worst, MAX_TRIGGERED * 4) + 16
