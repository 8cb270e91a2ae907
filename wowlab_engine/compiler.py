"""Check a parsed config's references and compile it to the kernel's arrays.

:func:`prepare` is the whole path from parsed JSON to a :class:`PreparedSim`: shape checks
(:mod:`wowlab_engine.config`), name resolution with the JSON path in every error, cycles of
triggered spells, rotation entries that could loop without time passing, the bytecode of
the conditions, and finally the structure-of-arrays :class:`~wowlab_engine.sim.model.Model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wowlab_engine.compile_auras import compile_auras, compile_procs
from wowlab_engine.conditions import Names, compile_condition
from wowlab_engine.config import SCHOOLS, SimConfig, parse_config
from wowlab_engine.references import NameResolver, check_triggers, fail, ms
from wowlab_engine.sim import model as M

#: A rotation spell must take at least this long (GCD, cast or channel) or have a cooldown
#: of at least MIN_ROTATION_COOLDOWN_MS, so the actor cannot loop without time passing.
MIN_ROTATION_STEP_MS = 50
MIN_ROTATION_COOLDOWN_MS = 1000
#: Most buckets of the DPS timeline (1 s each up to this many seconds, then wider).
DPS_TIMELINE_POINTS = 600
#: Most buckets of the resource and aura-uptime timelines.
STATE_TIMELINE_POINTS = 120
#: Most casts of the sample action sequence (iteration 0).
SEQUENCE_CAP = 500


def timeline_steps(fight_ms: int, vary_ms: int) -> tuple[int, int, int, int]:
    """DPS-timeline step and points, resource/aura-timeline step and points (ms).

    Steps are whole seconds and the state step is a multiple of the DPS step, so the
    fight time of a state bucket is the sum of its DPS buckets'.
    """
    longest = fight_ms + vary_ms
    step = 1000 * -(-longest // (1000 * DPS_TIMELINE_POINTS))
    points = -(-longest // step)
    state_step = step * -(-points // STATE_TIMELINE_POINTS)
    return step, points, state_step, -(-longest // state_step)


@dataclass(frozen=True)
class PreparedSim:
    """A validated config and its compiled arrays, ready for :func:`run` in any thread."""

    config: SimConfig
    model: M.Model
    abilities: tuple[str, ...]  # spell names, then aura names (rows of per-ability metrics)
    auras: tuple[str, ...]
    procs: tuple[str, ...]
    resources: tuple[str, ...]


def prepare(raw: Any) -> PreparedSim:
    """Validate parsed JSON and compile it. Raises :class:`ConfigInvalid` naming the path."""
    cfg = parse_config(raw)
    res = NameResolver(cfg)
    model = _compile(cfg, res)
    aura_names = tuple(sorted(res.auras, key=res.auras.__getitem__))
    return PreparedSim(
        config=cfg,
        model=model,
        abilities=tuple(s.name for s in cfg.spells) + aura_names,
        auras=aura_names,
        procs=tuple(p.name for p in cfg.procs),
        resources=tuple(r.name for r in cfg.actor.resources),
    )


def _compile(cfg: SimConfig, res: NameResolver) -> M.Model:
    n_s, n_r, n_t = len(cfg.spells), len(res.resources), cfg.fight.targets
    n_a = len(res.auras)
    n_ab = n_s + n_a
    i64, f64 = np.int64, np.float64
    a: dict[str, Any] = {}

    # Resources.
    a["res_max"] = np.array([r.max for r in cfg.actor.resources], f64)
    a["res_start"] = np.array(
        [r.max if r.start is None else r.start for r in cfg.actor.resources], f64
    )
    a["res_regen"] = np.array([r.regen_per_second / 1000.0 for r in cfg.actor.resources], f64)
    a["res_hasted"] = np.array([r.regen_hasted for r in cfg.actor.resources], i64)

    # Spells.
    spell_cols = {
        k: np.zeros(n_s, i64)
        for k in (
            "sp_cast_ms",
            "sp_gcd_ms",
            "sp_gcd_hasted",
            "sp_gcd_min_ms",
            "sp_off_gcd",
            "sp_cooldown_ms",
            "sp_cooldown_hasted",
            "sp_charges",
            "sp_finisher_res",
            "sp_school",
            "sp_can_crit",
            "sp_mastery",
            "sp_targets",
            "sp_aura_primary",
            "sp_channel_aura",
            "sp_apply_start",
            "sp_apply_count",
            "sp_consume_start",
            "sp_consume_count",
            "sp_trigger_start",
            "sp_trigger_count",
        )
    }
    a.update(spell_cols)
    a.update({k: np.zeros(n_s, f64) for k in ("sp_finisher_min", "sp_coeff", "sp_variance")})
    a["sp_cost"] = np.zeros((n_s, n_r), f64)
    a["sp_gain"] = np.zeros((n_s, n_r), f64)
    apply_aura: list[int] = []
    apply_stacks: list[int] = []
    consume_aura: list[int] = []
    trigger_spell: list[int] = []
    for i, sp in enumerate(cfg.spells):
        p = f"spells[{i}]"
        a["sp_cast_ms"][i] = ms(sp.cast_time)
        a["sp_gcd_ms"][i] = ms(sp.gcd)
        a["sp_gcd_hasted"][i] = sp.gcd_hasted
        a["sp_gcd_min_ms"][i] = ms(min(sp.gcd_min, sp.gcd))
        a["sp_off_gcd"][i] = sp.off_gcd
        a["sp_cooldown_ms"][i] = ms(sp.cooldown)
        a["sp_cooldown_hasted"][i] = sp.cooldown_hasted
        a["sp_charges"][i] = sp.charges
        for name, amount in sp.cost.items():
            a["sp_cost"][i, res.resource(name, f"{p}.cost.{name}")] = amount
        for name, amount in sp.gain.items():
            a["sp_gain"][i, res.resource(name, f"{p}.gain.{name}")] = amount
        a["sp_finisher_res"][i] = -1
        if sp.finisher is not None:
            a["sp_finisher_res"][i] = res.resource(sp.finisher.resource, f"{p}.finisher.resource")
            a["sp_finisher_min"][i] = sp.finisher.min
        a["sp_targets"][i] = 1
        if sp.damage is not None:
            d = sp.damage
            a["sp_coeff"][i] = d.coefficient
            a["sp_variance"][i] = d.variance
            a["sp_school"][i] = SCHOOLS.index(d.school)
            a["sp_can_crit"][i] = d.can_crit
            a["sp_mastery"][i] = d.mastery
            a["sp_targets"][i] = d.max_targets
        a["sp_aura_primary"][i] = sp.aura_targets == "primary"
        a["sp_channel_aura"][i] = res.auras[sp.name] if sp.channel else -1
        a["sp_apply_start"][i] = len(apply_aura)
        for j, app in enumerate(sp.apply):
            apply_aura.append(res.aura(app.aura, f"{p}.apply[{j}].aura"))
            apply_stacks.append(app.stacks)
        a["sp_apply_count"][i] = len(sp.apply)
        a["sp_consume_start"][i] = len(consume_aura)
        for j, name in enumerate(sp.consume):
            consume_aura.append(res.aura(name, f"{p}.consume[{j}]"))
        a["sp_consume_count"][i] = len(sp.consume)
        a["sp_trigger_start"][i] = len(trigger_spell)
        for j, name in enumerate(sp.trigger):
            trigger_spell.append(res.spell(name, f"{p}.trigger[{j}]"))
        a["sp_trigger_count"][i] = len(sp.trigger)
    a["apply_aura"] = np.array(apply_aura, i64)
    a["apply_stacks"] = np.array(apply_stacks, i64)
    a["consume_aura"] = np.array(consume_aura, i64)
    a["trigger_spell"] = np.array(trigger_spell, i64)

    compile_auras(cfg, res, a, n_s, n_a, n_ab)
    compile_procs(cfg, res, a, n_s, n_r, n_ab)
    work_cap = check_triggers(cfg, res, a)
    cond_stack = _compile_rotation(cfg, res, a)
    a["precombat"] = np.array(
        [res.aura(name, f"precombat[{j}]") for j, name in enumerate(cfg.precombat)], i64
    )

    fight = cfg.fight
    base_ms = ms(fight.max_time)
    ints = np.zeros(M.N_INTS, i64)
    ints[M.I_TARGETS] = n_t
    ints[M.I_FIGHT_MS] = base_ms
    ints[M.I_FIGHT_VARY_MS] = round(base_ms * fight.vary_combat_length)
    ints[M.I_SPELLS] = n_s
    ints[M.I_AURAS] = n_a
    ints[M.I_PROCS] = len(cfg.procs)
    ints[M.I_RESOURCES] = n_r
    ints[M.I_ROTATION] = len(cfg.rotation)
    ints[M.I_EFFECTS] = len(a["ef_aura"])
    ints[M.I_COND_STACK] = cond_stack
    ints[M.I_WORK_CAP] = work_cap
    steps = timeline_steps(int(ints[M.I_FIGHT_MS]), int(ints[M.I_FIGHT_VARY_MS]))
    ints[M.I_TL_STEP_MS], ints[M.I_TL_POINTS], ints[M.I_ST_STEP_MS], ints[M.I_ST_POINTS] = steps
    ints[M.I_SEQ_CAP] = SEQUENCE_CAP
    actor = cfg.actor
    floats = np.zeros(M.N_FLOATS, f64)
    floats[M.F_PRIMARY] = actor.primary_stat
    floats[M.F_CRIT] = actor.stat_percent("crit") / 100.0
    floats[M.F_HASTE] = actor.stat_percent("haste") / 100.0
    floats[M.F_MASTERY] = actor.stat_percent("mastery") / 100.0
    floats[M.F_VERSATILITY] = actor.stat_percent("versatility") / 100.0
    floats[M.F_CRIT_MULTIPLIER] = actor.crit_multiplier
    taken = 1.0 + fight.damage_taken_pct / 100.0
    floats[M.F_TAKEN : M.F_TAKEN + len(SCHOOLS)] = taken
    floats[M.F_TAKEN] = taken * (1.0 - fight.armor / (fight.armor + fight.armor_constant))
    return _pack(a, ints, floats)


#: Float columns of the compiler's tables and their rows in Model.f.
_FLOAT_ROWS = {
    "sp_finisher_min": M.SPF_FINISHER_MIN,
    "sp_coeff": M.SPF_COEFF,
    "sp_variance": M.SPF_VARIANCE,
    "au_coeff": M.AUF_COEFF,
    "au_variance": M.AUF_VARIANCE,
    "ef_value": M.EFF_VALUE,
    "pr_chance": M.PRF_CHANCE,
    "pr_rppm": M.PRF_RPPM,
    "res_max": M.RSF_MAX,
    "res_start": M.RSF_START,
    "res_regen": M.RSF_REGEN,
}
_FLOAT_BLOCKS = {"sp_cost": M.SPF_COST, "sp_gain": M.SPF_GAIN, "pr_gain": M.PRF_GAIN}
_LISTS = (
    "apply_aura",
    "apply_stacks",
    "consume_aura",
    "trigger_spell",
    "precombat",
    "code",
    "constants",
    "ef_mask",
    "pr_mask",
)


def _pack(a: dict[str, Any], ints: np.ndarray, floats: np.ndarray) -> M.Model:
    """Lay the named columns out as rows of the model's int and float tables."""
    # mi[LINKS]: (aura, stacks) pairs, consumed auras, triggered spells, precombat, code.
    pairs = np.stack([a["apply_aura"], a["apply_stacks"]], axis=1).reshape(-1)
    consume_base = len(pairs)
    trigger_base = consume_base + len(a["consume_aura"])
    precombat_base = trigger_base + len(a["trigger_spell"])
    code_base = precombat_base + len(a["precombat"])
    links = np.concatenate(
        [pairs, a["consume_aura"], a["trigger_spell"], a["precombat"], a["code"].reshape(-1)]
    ).astype(np.int64)
    consts = a["constants"].astype(np.float64)
    columns = [v for k, v in a.items() if k not in _LISTS and v.ndim == 1]
    width = max([M.N_INTS, M.N_FLOATS, len(links), len(consts), *(len(v) for v in columns)])
    mi = np.zeros((M.N_MI_ROWS, width), np.int64)
    mf = np.zeros((M.N_MF_ROWS, width), np.float64)
    for name, values in a.items():
        if name in _LISTS:
            continue
        if name in _FLOAT_ROWS:
            mf[_FLOAT_ROWS[name], : len(values)] = values
        elif name in _FLOAT_BLOCKS:
            for r in range(values.shape[1]):
                mf[_FLOAT_BLOCKS[name] + r, : values.shape[0]] = values[:, r]
        else:
            mi[getattr(M, name.upper()), : len(values)] = values
    n_s = int(ints[M.I_SPELLS])
    mi[M.SP_APPLY_START, :n_s] *= 2
    mi[M.SP_CONSUME_START, :n_s] += consume_base
    mi[M.SP_TRIGGER_START, :n_s] += trigger_base
    ints[M.I_PRECOMBAT_START] = precombat_base
    ints[M.I_PRECOMBAT_COUNT] = len(a["precombat"])
    ints[M.I_CODE_START] = code_base
    ints[M.I_MISC_ROW] = M.metric_rows(
        n_s, int(ints[M.I_AURAS]), int(ints[M.I_PROCS]), int(ints[M.I_RESOURCES])
    )[4]
    mi[M.HEAD, : len(ints)] = ints
    mf[M.HEAD, : len(floats)] = floats
    mi[M.LINKS, : len(links)] = links
    mf[M.CONSTS, : len(consts)] = consts
    mk = np.concatenate([a["ef_mask"], a["pr_mask"]]).astype(np.int8)
    if len(mk) == 0:
        mk = np.zeros((1, a["ef_mask"].shape[1]), np.int8)
    mi[M.HEAD, M.I_LONG] = M.MASK + len(mk)
    return M.Model(mi=mi, mf=mf, mk=mk)


def _compile_rotation(cfg: SimConfig, res: NameResolver, a: dict[str, Any]) -> int:
    names = Names(
        auras=res.auras, target_auras=res.target_auras, spells=res.spells, resources=res.resources
    )
    code: list[tuple[int, int]] = []
    constants: list[float] = []
    starts, counts, spells = [], [], []
    max_stack = 1
    for i, entry in enumerate(cfg.rotation):
        p = f"rotation[{i}]"
        s = res.spell(entry.spell, f"{p}.spell")
        sp = cfg.spells[s]
        if sp.background:
            raise fail(f"{p}.spell", f"'{sp.name}' is a background spell")
        step = (
            0
            if sp.off_gcd
            else ms(min(sp.gcd, max(sp.gcd_min, sp.gcd / 10)) if sp.gcd_hasted else sp.gcd)
        )
        if sp.channel is not None:
            step = max(step, ms(sp.channel.duration / 10))
        if step < MIN_ROTATION_STEP_MS and ms(sp.cooldown) < MIN_ROTATION_COOLDOWN_MS:
            raise fail(
                f"{p}.spell",
                f"'{sp.name}' takes no time (no GCD, channel or cast), "
                "so it needs a cooldown of at least 1 s",
            )
        bc = compile_condition(
            entry.condition, names, path=f"{p}.condition", const_base=len(constants)
        )
        starts.append(len(code))
        counts.append(len(bc.code))
        spells.append(s)
        code.extend(bc.code)
        constants.extend(bc.constants)
        max_stack = max(max_stack, bc.max_stack)
    a["rot_spell"] = np.array(spells, np.int64)
    a["rot_start"] = np.array(starts, np.int64)
    a["rot_count"] = np.array(counts, np.int64)
    a["code"] = np.array(code, np.int64).reshape(-1, 2)
    a["constants"] = np.array(constants, np.float64)
    return max_stack
