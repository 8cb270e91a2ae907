"""Engine sections of a report: abilities, auras, procs, resources, fight.

A pure function of the prepared config and the merged result; floats are rounded so the
JSON is byte-identical however the job was chunked.
"""

from __future__ import annotations

from typing import Any

from wowlab_core.results import ChunkResult
from wowlab_engine.compiler import PreparedSim
from wowlab_engine.runner import AB_COLUMNS as ABILITY_COLUMNS


def _ratio(num: float, den: float, digits: int = 2) -> float:
    return round(num / den, digits) if den else 0.0


def report_sections(prepared: PreparedSim, result: ChunkResult) -> dict[str, Any]:
    """Per-ability table, aura uptimes, procs, resources and fight figures."""
    metrics = result.metrics
    n = result.count
    fight_s = metrics.get("fight_ms", 0) / 1000.0
    total = sum(metrics.get(f"ability.{name}.damage", 0) for name in set(prepared.abilities))
    abilities: list[dict[str, Any]] = []
    for name in dict.fromkeys(prepared.abilities):  # unique, in config order
        row = {c: metrics.get(f"ability.{name}.{c}", 0) for c in ABILITY_COLUMNS}
        damage, executes, ticks, hits = row["damage"], row["executes"], row["ticks"], row["hits"]
        if not (damage or executes or ticks):
            continue
        abilities.append(
            {
                "ability": name,
                "damage": _ratio(damage, n, 1),
                "dps": _ratio(damage, fight_s),
                "share_pct": _ratio(100.0 * damage, total),
                "executes": _ratio(executes, n),
                "avg_hit": _ratio(row["direct_damage"], hits, 1),
                "crit_pct": _ratio(100.0 * (row["crits"] + row["tick_crits"]), hits + ticks),
                "ticks": _ratio(ticks, n),
            }
        )
    abilities.sort(key=lambda row: (-row["damage"], row["ability"]))
    cfg = prepared.config
    on_target = {a.name for a in cfg.auras if a.on == "target"} | {
        s.name for s in cfg.spells if s.channel
    }
    auras = []
    for name in prepared.auras:
        slots = cfg.fight.targets if name in on_target else 1
        auras.append(
            {
                "aura": name,
                "uptime_pct": _ratio(
                    100.0 * metrics.get(f"aura.{name}.uptime_ms", 0),
                    metrics.get("fight_ms", 0) * slots,
                ),
                "triggers": _ratio(metrics.get(f"aura.{name}.triggers", 0), n),
                "refreshes": _ratio(metrics.get(f"aura.{name}.refreshes", 0), n),
            }
        )
    procs = []
    for name in prepared.procs:
        count = metrics.get(f"proc.{name}.count", 0)
        procs.append(
            {
                "proc": name,
                "count": _ratio(count, n),
                "per_minute": _ratio(count, fight_s / 60.0, 3),
                "interval_s": _ratio(fight_s, count),
            }
        )
    resources = []
    for name in prepared.resources:
        gained = metrics.get(f"resource.{name}.gained", 0) / 1000.0
        overflow = metrics.get(f"resource.{name}.overflow", 0) / 1000.0
        resources.append(
            {
                "resource": name,
                "gained": _ratio(gained, n),
                "spent": _ratio(metrics.get(f"resource.{name}.spent", 0) / 1000.0, n),
                "overflow": _ratio(overflow, n),
                "overflow_pct": _ratio(100.0 * overflow, gained + overflow),
            }
        )
    sections: dict[str, Any] = {"abilities": abilities}
    if auras:
        sections["auras"] = auras
    if procs:
        sections["procs"] = procs
    if resources:
        sections["resources"] = resources
    sections["fight"] = {
        "name": cfg.name,
        "mean_length_s": _ratio(fight_s, n, 3),
        "targets": cfg.fight.targets,
        "events_per_iteration": _ratio(metrics.get("events", 0), n, 1),
        "iterations_truncated": metrics.get("iterations_truncated", 0),
        "hits_clipped": metrics.get("hits_clipped", 0),
    }
    return sections
