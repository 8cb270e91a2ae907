"""Compile auras, their effects and procs into the model's named columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from wowlab_engine.config import SCHOOLS, STATS, SimConfig
from wowlab_engine.references import NameResolver, fail, ms
from wowlab_engine.sim import model as M

EFFECT_TYPES = {
    "stat_add": M.EFFECT_STAT_ADD,
    "stat_pct": M.EFFECT_STAT_PCT,
    "damage_pct": M.EFFECT_DAMAGE_PCT,
    "haste_pct": M.EFFECT_HASTE_PCT,
    "cooldown_rate_pct": M.EFFECT_COOLDOWN_RATE_PCT,
    "regen_pct": M.EFFECT_REGEN_PCT,
    "cast_time_pct": M.EFFECT_CAST_TIME_PCT,
}
PROC_TRIGGERS = {"cast": M.ON_CAST, "hit": M.ON_HIT, "crit": M.ON_CRIT, "tick": M.ON_TICK}


def compile_auras(
    cfg: SimConfig, res: NameResolver, a: dict[str, Any], n_s: int, n_a: int, n_ab: int
) -> None:
    i64, f64 = np.int64, np.float64
    cols_i = (
        "au_on_target",
        "au_duration_ms",
        "au_channel_ticks",
        "au_max_stacks",
        "au_pandemic",
        "au_period_ms",
        "au_period_hasted",
        "au_partial",
        "au_school",
        "au_can_crit",
        "au_mastery",
        "au_effect_kinds",
    )
    a.update({k: np.zeros(n_a, i64) for k in cols_i})
    a.update({k: np.zeros(n_a, f64) for k in ("au_coeff", "au_variance")})
    effects: list[tuple[int, int, float, int, int, int, np.ndarray]] = []
    for i, au in enumerate(cfg.auras):
        p = f"auras[{i}]"
        a["au_on_target"][i] = au.on == "target"
        a["au_duration_ms"][i] = ms(au.duration)
        a["au_max_stacks"][i] = au.max_stacks
        a["au_pandemic"][i] = au.pandemic
        if au.periodic is not None:
            per = au.periodic
            a["au_period_ms"][i] = ms(per.period)
            a["au_period_hasted"][i] = per.hasted
            a["au_partial"][i] = per.partial_last_tick
            a["au_coeff"][i] = per.coefficient
            a["au_variance"][i] = per.variance
            a["au_school"][i] = SCHOOLS.index(per.school)
            a["au_can_crit"][i] = per.can_crit
            a["au_mastery"][i] = per.mastery
        a["au_effect_kinds"][i] = sum({1 << EFFECT_TYPES[ef.type] for ef in au.effects})
        for j, ef in enumerate(au.effects):
            ep = f"{p}.effects[{j}]"
            if au.on == "target" and ef.type != "damage_pct":
                raise fail(
                    f"{ep}.type",
                    "an aura on the target can only have damage_pct effects (damage taken)",
                )
            mask = np.zeros(n_ab, np.int8)
            if ef.spells:
                for k, name in enumerate(ef.spells):
                    for row in res.abilities(name, f"{ep}.spells[{k}]"):
                        mask[row] = 1
            else:
                mask[:] = 1
            if ef.school is not None:
                school = SCHOOLS.index(ef.school)
                schools = [sp.damage.school if sp.damage else None for sp in cfg.spells]
                schools += [x.periodic.school if x.periodic else None for x in cfg.auras]
                schools += [
                    sp.damage.school if sp.damage else None for sp in cfg.spells if sp.channel
                ]
                for row, sch in enumerate(schools):
                    if sch is None or SCHOOLS.index(sch) != school:
                        mask[row] = 0
            resource = 0
            if ef.type == "regen_pct":
                assert ef.resource is not None
                resource = res.resource(ef.resource, f"{ep}.resource")
            stat = STATS.index(ef.stat) if ef.stat is not None else 0
            effects.append(
                (
                    i,
                    EFFECT_TYPES[ef.type],
                    ef.value,
                    stat,
                    -1 if ef.school is None else SCHOOLS.index(ef.school),
                    resource,
                    mask,
                )
            )
    # Channelled spells get an aura of their own name: hasted ticks, then it ends.
    for sp in cfg.spells:
        if sp.channel is None:
            continue
        i = res.auras[sp.name]
        ch = sp.channel
        period = ch.duration / ch.ticks
        a["au_period_ms"][i] = max(1, ms(period))
        a["au_channel_ticks"][i] = ch.ticks
        a["au_period_hasted"][i] = ch.hasted
        a["au_max_stacks"][i] = 1
        a["au_on_target"][i] = 1
        d = sp.damage
        a["au_coeff"][i] = d.coefficient if d else 0.0
        a["au_variance"][i] = d.variance if d else 0.0
        a["au_school"][i] = SCHOOLS.index(d.school) if d else 0
        a["au_can_crit"][i] = d.can_crit if d else 0
        a["au_mastery"][i] = d.mastery if d else 0
        if sp.channel.duration / ch.ticks < 0.1:
            raise fail(
                f"spells[{res.spells[sp.name]}].channel.ticks",
                "ticks would be less than 0.1 s apart",
            )
    a["ef_aura"] = np.array([e[0] for e in effects], i64)
    a["ef_type"] = np.array([e[1] for e in effects], i64)
    a["ef_value"] = np.array([e[2] for e in effects], f64)
    a["ef_stat"] = np.array([e[3] for e in effects], i64)
    a["ef_school"] = np.array([e[4] for e in effects], i64)
    a["ef_resource"] = np.array([e[5] for e in effects], i64)
    a["ef_mask"] = (
        np.array([e[6] for e in effects], np.int8) if effects else np.zeros((0, n_ab), np.int8)
    )


def compile_procs(
    cfg: SimConfig, res: NameResolver, a: dict[str, Any], n_s: int, n_r: int, n_ab: int
) -> None:
    i64, f64 = np.int64, np.float64
    n_p = len(cfg.procs)
    a.update(
        {
            k: np.zeros(n_p, i64)
            for k in (
                "pr_on",
                "pr_rppm_haste",
                "pr_blp",
                "pr_icd_ms",
                "pr_aura",
                "pr_stacks",
                "pr_spell",
                "pr_reset",
            )
        }
    )
    a.update({k: np.zeros(n_p, f64) for k in ("pr_chance", "pr_rppm")})
    a["pr_mask"] = np.zeros((n_p, n_ab), np.int8)
    a["pr_gain"] = np.zeros((n_p, n_r), f64)
    for i, pr in enumerate(cfg.procs):
        p = f"procs[{i}]"
        a["pr_on"][i] = PROC_TRIGGERS[pr.on]
        for k, name in enumerate(pr.spells):
            path = f"{p}.spells[{k}]"
            if pr.on == "tick":
                if name not in res.periodic:
                    known = {n: 0 for n in res.periodic}
                    res.lookup(known, "periodic aura", name, path)
                a["pr_mask"][i, n_s + res.auras[name]] = 1
            elif pr.on in ("cast", "hit"):
                a["pr_mask"][i, res.spell(name, path)] = 1
            else:
                for row in res.abilities(name, path):
                    a["pr_mask"][i, row] = 1
        if not pr.spells:
            if pr.on in ("cast", "hit", "crit"):
                a["pr_mask"][i, :n_s] = 1
            if pr.on in ("tick", "crit"):
                for name in res.periodic:
                    a["pr_mask"][i, n_s + res.auras[name]] = 1
        a["pr_chance"][i] = pr.chance or 0.0
        a["pr_rppm"][i] = pr.rppm or 0.0
        a["pr_rppm_haste"][i] = pr.rppm_haste
        a["pr_blp"][i] = pr.bad_luck_protection
        a["pr_icd_ms"][i] = ms(pr.icd)
        a["pr_aura"][i] = -1
        if pr.apply is not None:
            aura = res.aura(pr.apply.aura, f"{p}.apply.aura")
            a["pr_aura"][i] = aura
            a["pr_stacks"][i] = pr.apply.stacks
        a["pr_spell"][i] = -1 if pr.trigger is None else res.spell(pr.trigger, f"{p}.trigger")
        for name, amount in pr.gain.items():
            a["pr_gain"][i, res.resource(name, f"{p}.gain.{name}")] = amount
        a["pr_reset"][i] = -1
        if pr.reset_cooldown is not None:
            s = res.spell(pr.reset_cooldown, f"{p}.reset_cooldown")
            if a["sp_cooldown_ms"][s] <= 0:
                raise fail(f"{p}.reset_cooldown", f"spell '{pr.reset_cooldown}' has no cooldown")
            a["pr_reset"][i] = s
