"""Timelines and the sample action sequence of a report, from a merged result's metrics.

* DPS over time: damage in each bucket (1 s up to 600 s fights) over the fight time the
  iterations spent in it, so later buckets, which fewer fights reach, stay unbiased.
* Resources: the mean value at each bucket start, over the fights still going then.
* Aura uptime: the percentage of the fight time in each bucket the aura was up (on every
  target, for a target aura).
* The sample sequence: the rotation's casts in iteration 0, with the first resource.
"""

from __future__ import annotations

from typing import Any

from wowlab_engine.compiler import PreparedSim
from wowlab_engine.sim import model as M


def _series(metrics: dict[str, int], prefix: str, points: int) -> list[int]:
    return [metrics.get(f"{prefix}.{k}", 0) for k in range(points)]


def _trim(values: list[float], reached: list[int]) -> list[float]:
    """Drop the buckets no fight reached (the longest possible fight may not occur)."""
    last = max((k for k, r in enumerate(reached) if r), default=-1)
    return values[: last + 1]


def timelines(
    prepared: PreparedSim, metrics: dict[str, int], on_target: set[str]
) -> dict[str, Any]:
    """The DPS, resource and aura-uptime timelines (lists of floats, one per bucket)."""
    head = prepared.model.mi[M.HEAD]
    step, points = int(head[M.I_TL_STEP_MS]), int(head[M.I_TL_POINTS])
    state_step, state_points = int(head[M.I_ST_STEP_MS]), int(head[M.I_ST_POINTS])
    per_state = state_step // step
    damage = _series(metrics, "timeline.damage", points)
    fight_ms = _series(metrics, "timeline.fight_ms", points)
    dps = [round(1000.0 * d / f, 1) if f else 0.0 for d, f in zip(damage, fight_ms, strict=True)]
    state_fight = [sum(fight_ms[k * per_state : (k + 1) * per_state]) for k in range(state_points)]
    samples = _series(metrics, "timeline.samples", state_points)
    resources: dict[str, list[float]] = {}
    for name in prepared.resources:
        values = _series(metrics, f"timeline.resource.{name}", state_points)
        mean = [
            round(v / 1000.0 / s, 2) if s else 0.0 for v, s in zip(values, samples, strict=True)
        ]
        resources[name] = _trim(mean, samples)
    targets = prepared.config.fight.targets
    auras: dict[str, list[float]] = {}
    for name in prepared.auras:
        up = _series(metrics, f"timeline.aura.{name}", state_points)
        if not any(up):
            continue
        slots = targets if name in on_target else 1
        pct = [
            round(100.0 * u / (f * slots), 1) if f else 0.0
            for u, f in zip(up, state_fight, strict=True)
        ]
        auras[name] = _trim(pct, state_fight)
    return {
        "dps": {"step_s": step / 1000.0, "values": _trim(dps, fight_ms)},
        "resources": {"step_s": state_step / 1000.0, "series": resources},
        "aura_uptime": {"step_s": state_step / 1000.0, "series": auras},
    }


def sample_sequence(prepared: PreparedSim, metrics: dict[str, int]) -> list[dict[str, Any]]:
    """The casts of iteration 0 (when the result covers it): time, spell, first resource."""
    cap = int(prepared.model.mi[M.HEAD, M.I_SEQ_CAP])
    spells = [s.name for s in prepared.config.spells]
    resource = prepared.resources[0] if prepared.resources else None
    out: list[dict[str, Any]] = []
    for k in range(cap):
        entry = metrics.get(f"sequence.{k}", 0)
        if not entry:
            break
        entry -= M.SEQ_PRESENT
        row: dict[str, Any] = {
            "time_s": (entry & ((1 << M.SEQ_SPELL_SHIFT) - 1)) / 1000.0,
            "spell": spells[(entry >> M.SEQ_SPELL_SHIFT) & 0x7F],
        }
        if resource is not None:
            row[resource] = entry >> M.SEQ_RESOURCE_SHIFT
        out.append(row)
    return out
