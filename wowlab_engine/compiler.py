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

from wowlab_core.errors import ConfigInvalid
from wowlab_engine.conditions import Names, compile_condition
from wowlab_engine.config import SCHOOLS, STATS, SimConfig, parse_config
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
#: Most spells one cast may set off at one instant (triggers and procs, all targets).
MAX_TRIGGERED = 4096
#: A rotation spell must take at least this long (GCD, cast or channel) or have a cooldown
#: of at least MIN_ROTATION_COOLDOWN_MS, so the actor cannot loop without time passing.
MIN_ROTATION_STEP_MS = 50
MIN_ROTATION_COOLDOWN_MS = 1000


@dataclass(frozen=True)
class PreparedSim:
    """A validated config and its compiled arrays, ready for :func:`run` in any thread."""

    config: SimConfig
    model: M.Model
    abilities: tuple[str, ...]  # spell names, then aura names (rows of per-ability metrics)
    auras: tuple[str, ...]
    procs: tuple[str, ...]
    resources: tuple[str, ...]


def _ms(seconds: float) -> int:
    return round(seconds * 1000.0)


def _fail(path: str, message: str) -> ConfigInvalid:
    return ConfigInvalid(f"{path}: {message}", field=path)


class _Resolver:
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
                    raise _fail(
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
                raise _fail(f"{path}[{i}].name", f"duplicate name '{name}'")
            seen[name] = i
        return seen

    def lookup(self, table: dict[str, int], kind: str, name: str, path: str) -> int:
        if name not in table:
            import difflib

            close = difflib.get_close_matches(name, list(table), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _fail(path, f"unknown {kind} '{name}'{hint}")
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


def prepare(raw: Any) -> PreparedSim:
    """Validate parsed JSON and compile it. Raises :class:`ConfigInvalid` naming the path."""
    cfg = parse_config(raw)
    res = _Resolver(cfg)
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


def _compile(cfg: SimConfig, res: _Resolver) -> M.Model:
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
        a["sp_cast_ms"][i] = _ms(sp.cast_time)
        a["sp_gcd_ms"][i] = _ms(sp.gcd)
        a["sp_gcd_hasted"][i] = sp.gcd_hasted
        a["sp_gcd_min_ms"][i] = _ms(min(sp.gcd_min, sp.gcd))
        a["sp_off_gcd"][i] = sp.off_gcd
        a["sp_cooldown_ms"][i] = _ms(sp.cooldown)
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

    _compile_auras(cfg, res, a, n_s, n_a, n_ab)
    _compile_procs(cfg, res, a, n_s, n_r, n_ab)
    work_cap = _check_triggers(cfg, res, a)
    cond_stack = _compile_rotation(cfg, res, a)
    a["precombat"] = np.array(
        [res.aura(name, f"precombat[{j}]") for j, name in enumerate(cfg.precombat)], i64
    )

    fight = cfg.fight
    base_ms = _ms(fight.max_time)
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
    return M.Model(mi=mi, mf=mf, mk=mk)


def _compile_auras(
    cfg: SimConfig, res: _Resolver, a: dict[str, Any], n_s: int, n_a: int, n_ab: int
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
        a["au_duration_ms"][i] = _ms(au.duration)
        a["au_max_stacks"][i] = au.max_stacks
        a["au_pandemic"][i] = au.pandemic
        if au.periodic is not None:
            per = au.periodic
            a["au_period_ms"][i] = _ms(per.period)
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
                raise _fail(
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
        a["au_period_ms"][i] = max(1, _ms(period))
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
            raise _fail(
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


def _compile_procs(
    cfg: SimConfig, res: _Resolver, a: dict[str, Any], n_s: int, n_r: int, n_ab: int
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
        a["pr_icd_ms"][i] = _ms(pr.icd)
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
                raise _fail(f"{p}.reset_cooldown", f"spell '{pr.reset_cooldown}' has no cooldown")
            a["pr_reset"][i] = s


def _check_triggers(cfg: SimConfig, res: _Resolver, a: dict[str, Any]) -> int:
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
                raise _fail(where, "cycle of triggered spells: " + " -> ".join(names))
            total += mult * visit(child, [*path, s])
            if total > MAX_TRIGGERED:
                raise _fail(
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


def _compile_rotation(cfg: SimConfig, res: _Resolver, a: dict[str, Any]) -> int:
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
            raise _fail(f"{p}.spell", f"'{sp.name}' is a background spell")
        step = (
            0
            if sp.off_gcd
            else _ms(min(sp.gcd, max(sp.gcd_min, sp.gcd / 10)) if sp.gcd_hasted else sp.gcd)
        )
        if sp.channel is not None:
            step = max(step, _ms(sp.channel.duration / 10))
        if step < MIN_ROTATION_STEP_MS and _ms(sp.cooldown) < MIN_ROTATION_COOLDOWN_MS:
            raise _fail(
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
