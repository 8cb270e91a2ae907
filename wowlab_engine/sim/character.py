"""The character's bookkeeping: resources, cooldowns and charges, stats and multipliers.

Functions take the two tables ``(ti, tf)`` (see :mod:`.model`) and the time ``now`` in
milliseconds. Everything here is lazy: regeneration is added and charges are credited when
someone looks, or just before a rate they depend on changes.
"""

from __future__ import annotations

from ._jit import jit
from .model import (
    AU_ON_TARGET,
    EF_AURA,
    EF_CAST_MULT,
    EF_CD_RATE,
    EF_RES_GAINED,
    EF_RES_OVERFLOW,
    EF_RES_RATE,
    EF_RES_SPENT,
    EF_RES_VALUE,
    EF_RESOURCE,
    EF_STAT,
    EF_TYPE,
    EFF_VALUE,
    EFFECT_CAST_TIME_PCT,
    EFFECT_COOLDOWN_RATE_PCT,
    EFFECT_DAMAGE_PCT,
    EFFECT_HASTE_PCT,
    EFFECT_REGEN_PCT,
    EFFECT_STAT_ADD,
    EFFECT_STAT_PCT,
    EI_CHARGES,
    EI_RECHARGE_END,
    EI_RES_LAST,
    F_CRIT,
    F_HASTE,
    F_MASTERY,
    F_PRIMARY,
    F_VERSATILITY,
    GAINS,
    HEAD,
    I_AURAS,
    I_EFFECTS,
    I_PROCS,
    I_RESOURCES,
    I_SPELLS,
    I_TARGETS,
    IN_STACKS,
    MASK,
    METRICS,
    MULT,
    RES_HASTED,
    RSF_MAX,
    RSF_REGEN,
    S_STAT,
    SP_CHARGES,
    SP_COOLDOWN_HASTED,
    SP_COOLDOWN_MS,
    ST_CRIT,
    ST_HASTE,
    ST_MASTERY,
    ST_PRIMARY,
    ST_VERSATILITY,
    Array,
    Int,
)


@jit
def round_ms(x: float) -> int:
    """Round a non-negative duration in ms to the nearest integer."""
    return int(x + 0.5)


# --- resources --------------------------------------------------------------------------


@jit
def sync_resource(ti: Array, tf: Array, r: Int, now: Int) -> None:
    """Bring resource ``r`` up to ``now``: add regeneration, record overflow."""
    dt = now - ti[EI_RES_LAST, r]
    if dt > 0:
        rate = tf[EF_RES_RATE, r]
        if rate > 0.0:
            gain_resource(ti, tf, r, rate * dt, ti[HEAD, I_SPELLS] + ti[HEAD, I_PROCS])
        ti[EI_RES_LAST, r] = now


@jit
def gain_resource(ti: Array, tf: Array, r: Int, amount: float, source: Int) -> None:
    """Add ``amount`` of resource ``r`` (synced already); what does not fit is overflow.

    ``source`` is the metric row of the gain: a spell, ``spells + proc``, or
    ``spells + procs`` for regeneration (milli-units, rounded per gain).
    """
    value = tf[EF_RES_VALUE, r] + amount
    cap = tf[RSF_MAX, r]
    if value > cap:
        over = value - cap
        tf[EF_RES_OVERFLOW, r] += over
        ti[METRICS + GAINS + 2 * r + 1, source] += round_ms(over * 1000.0)
        amount -= over
        value = cap
    tf[EF_RES_VALUE, r] = value
    tf[EF_RES_GAINED, r] += amount
    ti[METRICS + GAINS + 2 * r, source] += round_ms(amount * 1000.0)


@jit
def spend_resource(ti: Array, tf: Array, r: Int, amount: float, now: Int) -> float:
    """Spend up to ``amount`` of resource ``r``; return what was spent."""
    sync_resource(ti, tf, r, now)
    spent = min(amount, tf[EF_RES_VALUE, r])
    tf[EF_RES_VALUE, r] -= spent
    tf[EF_RES_SPENT, r] += spent
    return float(spent)


# --- cooldowns --------------------------------------------------------------------------


@jit
def recharge_ms(ti: Array, tf: Array, s: Int) -> int:
    """Duration of one recharge of spell ``s`` if it started now."""
    cd = ti[SP_COOLDOWN_MS, s] / tf[EF_CD_RATE, s]
    if ti[SP_COOLDOWN_HASTED, s]:
        cd = cd / tf[S_STAT, ST_HASTE]
    return max(1, round_ms(cd))


@jit
def update_charges(ti: Array, tf: Array, s: Int, now: Int) -> None:
    """Credit the charges of spell ``s`` that have recharged by ``now``."""
    top = ti[SP_CHARGES, s]
    while ti[EI_CHARGES, s] < top and ti[EI_RECHARGE_END, s] <= now:
        ti[EI_CHARGES, s] += 1
        if ti[EI_CHARGES, s] < top:
            ti[EI_RECHARGE_END, s] += recharge_ms(ti, tf, s)


@jit
def use_charge(ti: Array, tf: Array, s: Int, now: Int) -> None:
    """Spend a charge of spell ``s`` (start its cooldown)."""
    if ti[SP_COOLDOWN_MS, s] <= 0:
        return
    update_charges(ti, tf, s, now)
    if ti[EI_CHARGES, s] == ti[SP_CHARGES, s]:
        ti[EI_RECHARGE_END, s] = now + recharge_ms(ti, tf, s)
    if ti[EI_CHARGES, s] > 0:
        ti[EI_CHARGES, s] -= 1


# --- stats and multipliers ---------------------------------------------------------------


#: Effect kinds that change stats (and so haste-dependent rates) together.
STAT_KINDS = (1 << EFFECT_STAT_ADD) | (1 << EFFECT_STAT_PCT) | (1 << EFFECT_HASTE_PCT)
#: Effect kinds whose change needs cooldowns and resources brought up to now first.
TIMING_KINDS = STAT_KINDS | (1 << EFFECT_COOLDOWN_RATE_PCT) | (1 << EFFECT_REGEN_PCT)


@jit
def refresh_player(ti: Array, tf: Array, now: Int, kinds: Int) -> None:
    """Recompute what the player's auras change, after one with effects ``kinds`` changed.

    ``kinds`` is a bit mask of effect types (``1 << EFFECT_...``); only the figures those
    effects feed are recomputed, from all of the player's auras.
    """
    n_res, n_spells = ti[HEAD, I_RESOURCES], ti[HEAD, I_SPELLS]
    n_targets = ti[HEAD, I_TARGETS]
    n_ab = n_spells + ti[HEAD, I_AURAS]
    if kinds & STAT_KINDS:
        kinds |= STAT_KINDS | (1 << EFFECT_REGEN_PCT)  # haste feeds hasted regeneration
    if kinds & TIMING_KINDS:
        for r in range(n_res):
            sync_resource(ti, tf, r, now)
        for s in range(n_spells):
            update_charges(ti, tf, s, now)
    # add / pct per stat: primary, crit, haste, mastery, versatility
    add0 = add1 = add2 = add3 = add4 = 0.0
    pct0 = pct1 = pct2 = pct3 = pct4 = 1.0
    haste_mult = 1.0
    if kinds & (1 << EFFECT_DAMAGE_PCT):
        for ab in range(n_ab):
            tf[MULT, ab] = 1.0
    if kinds & (1 << EFFECT_CAST_TIME_PCT):
        for s in range(n_spells):
            tf[EF_CAST_MULT, s] = 1.0
    for e in range(ti[HEAD, I_EFFECTS]):
        kind = ti[EF_TYPE, e]
        if not (kinds >> kind) & 1:
            continue
        a = ti[EF_AURA, e]
        if ti[AU_ON_TARGET, a]:
            continue
        stacks = ti[IN_STACKS, a * n_targets]
        if stacks == 0:
            continue
        v = tf[EFF_VALUE, e] * stacks
        factor = 1.0 + v / 100.0
        stat = ti[EF_STAT, e]
        if kind == EFFECT_STAT_ADD:
            if stat == 0:
                add0 += v
            elif stat == 1:
                add1 += v
            elif stat == 2:
                add2 += v
            elif stat == 3:
                add3 += v
            else:
                add4 += v
        elif kind == EFFECT_STAT_PCT:
            if stat == 0:
                pct0 *= factor
            elif stat == 1:
                pct1 *= factor
            elif stat == 2:
                pct2 *= factor
            elif stat == 3:
                pct3 *= factor
            else:
                pct4 *= factor
        elif kind == EFFECT_HASTE_PCT:
            haste_mult *= factor
        elif kind == EFFECT_DAMAGE_PCT:
            for ab in range(n_ab):
                if ti[MASK + e, ab]:
                    tf[MULT, ab] *= max(0.0, factor)
        elif kind == EFFECT_CAST_TIME_PCT:
            for s in range(n_spells):
                if ti[MASK + e, s]:
                    tf[EF_CAST_MULT, s] *= max(0.0, factor)
    if kinds & STAT_KINDS:
        tf[S_STAT, ST_PRIMARY] = max(0.0, (tf[HEAD, F_PRIMARY] + add0) * pct0)
        crit = (tf[HEAD, F_CRIT] * 100.0 + add1) * pct1 / 100.0
        tf[S_STAT, ST_CRIT] = min(1.0, max(0.0, crit))
        haste = (1.0 + (tf[HEAD, F_HASTE] * 100.0 + add2) * pct2 / 100.0) * haste_mult
        tf[S_STAT, ST_HASTE] = min(10.0, max(0.1, haste))
        mastery = 1.0 + (tf[HEAD, F_MASTERY] * 100.0 + add3) * pct3 / 100.0
        tf[S_STAT, ST_MASTERY] = max(0.0, mastery)
        versatility = 1.0 + (tf[HEAD, F_VERSATILITY] * 100.0 + add4) * pct4 / 100.0
        tf[S_STAT, ST_VERSATILITY] = max(0.0, versatility)
    if kinds & (1 << EFFECT_COOLDOWN_RATE_PCT):
        for s in range(n_spells):
            rate = 1.0
            for e in range(ti[HEAD, I_EFFECTS]):
                a = ti[EF_AURA, e]
                if ti[EF_TYPE, e] == EFFECT_COOLDOWN_RATE_PCT and ti[MASK + e, s]:
                    stacks = ti[IN_STACKS, a * n_targets]
                    if stacks > 0:
                        rate *= 1.0 + tf[EFF_VALUE, e] * stacks / 100.0
            rate = min(100.0, max(0.01, rate))
            old = tf[EF_CD_RATE, s]
            if rate != old:
                left = ti[EI_RECHARGE_END, s] - now
                if ti[EI_CHARGES, s] < ti[SP_CHARGES, s] and left > 0:
                    ti[EI_RECHARGE_END, s] = now + round_ms(left * old / rate)
                tf[EF_CD_RATE, s] = rate
    if kinds & (1 << EFFECT_REGEN_PCT):
        for r in range(n_res):
            rate = tf[RSF_REGEN, r]
            for e in range(ti[HEAD, I_EFFECTS]):
                a = ti[EF_AURA, e]
                if ti[EF_TYPE, e] == EFFECT_REGEN_PCT and ti[EF_RESOURCE, e] == r:
                    stacks = ti[IN_STACKS, a * n_targets]
                    if stacks > 0 and not ti[AU_ON_TARGET, a]:
                        rate *= 1.0 + tf[EFF_VALUE, e] * stacks / 100.0
            if ti[RES_HASTED, r]:
                rate *= tf[S_STAT, ST_HASTE]
            tf[EF_RES_RATE, r] = rate


@jit
def refresh_target(ti: Array, tf: Array, slot: Int) -> None:
    """Recompute the damage-taken multipliers of target ``slot`` after its auras changed."""
    n_targets = ti[HEAD, I_TARGETS]
    n_ab = ti[HEAD, I_SPELLS] + ti[HEAD, I_AURAS]
    for ab in range(n_ab):
        tf[MULT + 1 + slot, ab] = 1.0
    for e in range(ti[HEAD, I_EFFECTS]):
        a = ti[EF_AURA, e]
        if not ti[AU_ON_TARGET, a] or ti[EF_TYPE, e] != EFFECT_DAMAGE_PCT:
            continue
        stacks = ti[IN_STACKS, a * n_targets + slot]
        if stacks == 0:
            continue
        factor = max(0.0, 1.0 + tf[EFF_VALUE, e] * stacks / 100.0)
        for ab in range(n_ab):
            if ti[MASK + e, ab]:
                tf[MULT + 1 + slot, ab] *= factor
