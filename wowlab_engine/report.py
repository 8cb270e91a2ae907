"""Engine sections of a report: abilities, targets, auras, procs, resources, fight, timelines.

A pure function of the prepared config and the merged result; floats are rounded so the
JSON is byte-identical however the job was chunked. Per-iteration figures are means over
the iterations; rates are per second (or minute) of fight time, as SimulationCraft reports.
"""

from __future__ import annotations

from typing import Any

from wowlab_core.report_view import humanize
from wowlab_core.results import ChunkResult
from wowlab_engine.compiler import PreparedSim
from wowlab_engine.report_timelines import sample_sequence, timelines


def _ratio(num: float, den: float, digits: int = 2) -> float:
    return round(num / den, digits) if den else 0.0


def ability_row(
    name: str, metrics: dict[str, int], n: int, fight_s: float, total: int, label: str
) -> dict[str, Any] | None:
    """One ability's row (None if it did nothing): SimC's per-ability table."""

    def get(column: str) -> int:
        return metrics.get(f"ability.{name}.{column}", 0)

    damage, executes, hits, ticks = get("damage"), get("executes"), get("hits"), get("ticks")
    if not (damage or executes or ticks):
        return None
    crits, tick_crits = get("crits"), get("tick_crits")
    direct, crit_damage = get("direct_damage"), get("crit_damage")
    tick_damage, tick_crit_damage = get("tick_damage"), get("tick_crit_damage")
    execute_s = get("execute_ms") / 1000.0
    return {
        "ability": name,
        "label": label,
        "dps": _ratio(damage, fight_s),
        "share_pct": _ratio(100.0 * damage, total),
        "damage": _ratio(damage, n, 1),
        "executes": _ratio(executes, n),
        "dpe": _ratio(damage, executes, 1),
        "dpet": _ratio(damage, execute_s, 1),
        "hits": _ratio(hits, n),
        "crit_pct": _ratio(100.0 * (crits + tick_crits), hits + ticks),
        "avg_hit": _ratio(direct, hits, 1),
        "avg_noncrit": _ratio(direct - crit_damage, hits - crits, 1),
        "avg_crit": _ratio(crit_damage, crits, 1),
        "min_hit": metrics.get(f"ability.{name}.hit.min", 0),
        "max_hit": metrics.get(f"ability.{name}.hit.max", 0),
        "ticks": _ratio(ticks, n),
        "tick_crit_pct": _ratio(100.0 * tick_crits, ticks),
        "avg_tick": _ratio(tick_damage, ticks, 1),
        "avg_tick_noncrit": _ratio(tick_damage - tick_crit_damage, ticks - tick_crits, 1),
        "avg_tick_crit": _ratio(tick_crit_damage, tick_crits, 1),
        "min_tick": metrics.get(f"ability.{name}.tick.min", 0),
        "max_tick": metrics.get(f"ability.{name}.tick.max", 0),
        "execute_s": _ratio(execute_s, n),
    }


def target_sections(
    prepared: PreparedSim, metrics: dict[str, int], fight_s: float, total: int
) -> dict[str, Any]:
    """With several targets: damage per target, and per ability and target."""
    targets = prepared.config.fight.targets
    if targets < 2:
        return {}
    per_target = [0] * targets
    rows = []
    for name in dict.fromkeys(prepared.abilities):
        for t in range(targets):
            damage = metrics.get(f"ability.{name}.target.{t}.damage", 0)
            per_target[t] += damage
            if damage:
                rows.append(
                    {
                        "ability": name,
                        "target": t + 1,
                        "dps": _ratio(damage, fight_s),
                        "share_pct": _ratio(100.0 * damage, total),
                    }
                )
    summary = [
        {"target": t + 1, "dps": _ratio(d, fight_s), "share_pct": _ratio(100.0 * d, total)}
        for t, d in enumerate(per_target)
    ]
    return {"targets": summary, "ability_targets": rows}


def resource_sections(prepared: PreparedSim, metrics: dict[str, int], n: int) -> dict[str, Any]:
    """Per resource: gained, spent, overflow; and gains and overflow by source."""
    cfg = prepared.config
    resources, gains = [], []
    sources = [("spell", s.name) for s in cfg.spells] + [("proc", p.name) for p in cfg.procs]
    sources.append(("regen", ""))
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
        for kind, source in sources:
            key = f"gain.{name}.{kind}.{source}" if source else f"gain.{name}.{kind}"
            got = metrics.get(f"{key}.gained", 0) / 1000.0
            lost = metrics.get(f"{key}.overflow", 0) / 1000.0
            if got or lost:
                gains.append(
                    {
                        "resource": name,
                        "source": source or "regeneration",
                        "gained": _ratio(got, n),
                        "overflow": _ratio(lost, n),
                        "overflow_pct": _ratio(100.0 * lost, got + lost),
                    }
                )
    out: dict[str, Any] = {}
    if resources:
        out["resources"] = resources
    if gains:
        out["resource_gains"] = gains
    return out


def report_labels(prepared: PreparedSim) -> dict[str, str]:
    """Spells' and auras' names in reports: the config's ``label``, else humanised."""
    cfg = prepared.config
    labels = {a.name: a.label or humanize(a.name) for a in cfg.auras}
    labels.update({s.name: s.label or humanize(s.name) for s in cfg.spells})
    for name in prepared.abilities:
        labels.setdefault(name, humanize(name))
    return labels


def report_sections(prepared: PreparedSim, result: ChunkResult) -> dict[str, Any]:
    """Per-ability and per-target tables, auras, procs, resources, fight, timelines."""
    metrics = result.metrics
    n = result.count
    fight_s = metrics.get("fight_ms", 0) / 1000.0
    names = list(dict.fromkeys(prepared.abilities))  # unique, in config order
    total = sum(metrics.get(f"ability.{name}.damage", 0) for name in names)
    labels = report_labels(prepared)
    abilities = [
        row
        for name in names
        if (row := ability_row(name, metrics, n, fight_s, total, labels[name])) is not None
    ]
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
                "label": labels.get(name) or humanize(name),
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
    sections: dict[str, Any] = {"abilities": abilities}
    sections.update(target_sections(prepared, metrics, fight_s, total))
    if auras:
        sections["auras"] = auras
    if procs:
        sections["procs"] = procs
    sections.update(resource_sections(prepared, metrics, n))
    sections["fight"] = {
        "name": cfg.name,
        "mean_length_s": _ratio(fight_s, n, 3),
        "targets": cfg.fight.targets,
        "apm": _ratio(metrics.get("casts", 0), fight_s / 60.0),
        "casts": _ratio(metrics.get("casts", 0), n),
        "events_per_iteration": _ratio(metrics.get("events", 0), n, 1),
        "iterations_truncated": metrics.get("iterations_truncated", 0),
        "hits_clipped": metrics.get("hits_clipped", 0),
    }
    sections["timelines"] = timelines(prepared, metrics, on_target)
    sequence = sample_sequence(prepared, metrics)
    if sequence:
        sections["sample_sequence"] = sequence
    return sections
