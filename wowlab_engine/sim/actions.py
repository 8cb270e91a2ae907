"""What happens in combat: resources, damage, auras, procs, cooldowns and spell execution.

Functions take the compiled config ``m`` (:class:`~.model.Model`), the state ``st``
(:class:`~.model.State`) and the current time ``now`` in milliseconds. Damage is computed
with IEEE double products in a fixed order (no fastmath) and truncated to an integer, so
every machine and the pure-Python copy agree bit for bit.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .heap import heap_cancel, heap_schedule
from .model import (
    AB_CRITS,
    AB_DAMAGE,
    AB_DIRECT_DAMAGE,
    AB_EXECUTES,
    AB_HITS,
    AB_TICK_CRITS,
    AB_TICK_DAMAGE,
    AB_TICKS,
    AU_CAN_CRIT,
    AU_CHANNEL_TICKS,
    AU_DURATION_MS,
    AU_HAS_EFFECTS,
    AU_MASTERY,
    AU_MAX_STACKS,
    AU_ON_TARGET,
    AU_PANDEMIC,
    AU_PARTIAL,
    AU_PERIOD_HASTED,
    AU_PERIOD_MS,
    AU_REFRESHES,
    AU_SCHOOL,
    AU_TRIGGERS,
    AU_UPTIME_MS,
    AUF_COEFF,
    AUF_VARIANCE,
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
    EI_PROC_ATTEMPT,
    EI_PROC_ICD,
    EI_PROC_LAST,
    EI_RECHARGE_END,
    EI_RES_LAST,
    EI_RNG_COUNTER,
    EI_RNG_KEY,
    F_CRIT,
    F_CRIT_MULTIPLIER,
    F_HASTE,
    F_MASTERY,
    F_PRIMARY,
    F_TAKEN,
    F_VERSATILITY,
    HEAD,
    HP_POS,
    HP_TIME,
    I_AURAS,
    I_EFFECTS,
    I_MISC_ROW,
    I_PROCS,
    I_RESOURCES,
    I_SPELLS,
    I_TARGETS,
    I_WORK_CAP,
    IN_EXPIRE,
    IN_LAST_TICK,
    IN_PERIOD,
    IN_STACKS,
    IN_UP_SINCE,
    LINKS,
    MAX_HIT,
    METRICS,
    MS_CLIPPED,
    MULT,
    N_DAMAGE,
    N_DAMAGE_EVENTS,
    N_SEQ,
    N_WORK,
    NEVER,
    ON_CAST,
    ON_CRIT,
    ON_HIT,
    ON_TICK,
    PR_AURA,
    PR_BLP,
    PR_ICD_MS,
    PR_ON,
    PR_RESET,
    PR_RPPM_HASTE,
    PR_SPELL,
    PR_STACKS,
    PRF_CHANCE,
    PRF_GAIN,
    PRF_RPPM,
    PROC_COUNT,
    RES_HASTED,
    RSF_MAX,
    RSF_REGEN,
    SP_APPLY_COUNT,
    SP_APPLY_START,
    SP_AURA_PRIMARY,
    SP_CAN_CRIT,
    SP_CHANNEL_AURA,
    SP_CHARGES,
    SP_CONSUME_COUNT,
    SP_CONSUME_START,
    SP_COOLDOWN_HASTED,
    SP_COOLDOWN_MS,
    SP_FINISHER_RES,
    SP_MASTERY,
    SP_SCHOOL,
    SP_TARGETS,
    SP_TRIGGER_COUNT,
    SP_TRIGGER_START,
    SPF_COEFF,
    SPF_COST,
    SPF_GAIN,
    SPF_VARIANCE,
    ST_CRIT,
    ST_HASTE,
    ST_MASTERY,
    ST_PRIMARY,
    ST_VERSATILITY,
    WORK,
    Array,
    Int,
)
from .rng import STREAM_CRIT, STREAM_PROC, STREAM_VARIANCE, draw_unit

# --- plumbing ---------------------------------------------------------------------------


@jit
def draw(si: Array, stream: Int) -> float:
    """Next uniform draw in [0, 1) of ``stream`` for the current iteration."""
    c = si[EI_RNG_COUNTER, stream]
    si[EI_RNG_COUNTER, stream] = c + 1
    return draw_unit(si[EI_RNG_KEY, stream], c)


@jit
def schedule(si: Array, key: Int, time: Int) -> None:
    """Schedule (or move) the event ``key`` at ``time``."""
    seq = si[HEAD, N_SEQ]
    si[HEAD, N_SEQ] = seq + 1
    heap_schedule(si, key, time, seq)


@jit
def tick_key(mi: Array, inst: Int) -> Int:
    """Heap key of the next tick of aura instance ``inst`` (its expiry is ``1 + inst``)."""
    return int(1 + mi[HEAD, I_AURAS] * mi[HEAD, I_TARGETS] + inst)


@jit
def round_ms(x: float) -> int:
    """Round a non-negative duration in ms to the nearest integer."""
    return int(x + 0.5)


# --- resources --------------------------------------------------------------------------


@jit
def sync_resource(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, r: Int, now: Int) -> None:
    """Bring resource ``r`` up to ``now``: add regeneration, record overflow."""
    dt = now - si[EI_RES_LAST, r]
    if dt > 0:
        rate = sf[EF_RES_RATE, r]
        if rate > 0.0:
            gain_resource(mi, mf, mk, si, sf, r, rate * dt)
        si[EI_RES_LAST, r] = now


@jit
def gain_resource(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, r: Int, amount: float
) -> None:
    """Add ``amount`` of resource ``r`` (synced already); what does not fit is overflow."""
    value = sf[EF_RES_VALUE, r] + amount
    cap = mf[RSF_MAX, r]
    if value > cap:
        sf[EF_RES_OVERFLOW, r] += value - cap
        amount -= value - cap
        value = cap
    sf[EF_RES_VALUE, r] = value
    sf[EF_RES_GAINED, r] += amount


@jit
def spend_resource(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, r: Int, amount: float, now: Int
) -> float:
    """Spend up to ``amount`` of resource ``r``; return what was spent."""
    sync_resource(mi, mf, mk, si, sf, r, now)
    spent = min(amount, sf[EF_RES_VALUE, r])
    sf[EF_RES_VALUE, r] -= spent
    sf[EF_RES_SPENT, r] += spent
    return float(spent)


# --- cooldowns --------------------------------------------------------------------------


@jit
def recharge_ms(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, s: Int) -> int:
    """Duration of one recharge of spell ``s`` if it started now."""
    cd = mi[SP_COOLDOWN_MS, s] / sf[EF_CD_RATE, s]
    if mi[SP_COOLDOWN_HASTED, s]:
        cd = cd / sf[HEAD, ST_HASTE]
    return max(1, round_ms(cd))


@jit
def update_charges(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, s: Int, now: Int) -> None:
    """Credit the charges of spell ``s`` that have recharged by ``now``."""
    top = mi[SP_CHARGES, s]
    while si[EI_CHARGES, s] < top and si[EI_RECHARGE_END, s] <= now:
        si[EI_CHARGES, s] += 1
        if si[EI_CHARGES, s] < top:
            si[EI_RECHARGE_END, s] += recharge_ms(mi, mf, mk, si, sf, s)


@jit
def use_charge(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, s: Int, now: Int) -> None:
    """Spend a charge of spell ``s`` (start its cooldown)."""
    if mi[SP_COOLDOWN_MS, s] <= 0:
        return
    update_charges(mi, mf, mk, si, sf, s, now)
    if si[EI_CHARGES, s] == mi[SP_CHARGES, s]:
        si[EI_RECHARGE_END, s] = now + recharge_ms(mi, mf, mk, si, sf, s)
    if si[EI_CHARGES, s] > 0:
        si[EI_CHARGES, s] -= 1


# --- stats and multipliers ---------------------------------------------------------------


@jit
def refresh_player(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, now: Int) -> None:
    """Recompute stats, damage multipliers and rates after a player aura changed."""
    n_res, n_spells = mi[HEAD, I_RESOURCES], mi[HEAD, I_SPELLS]
    n_targets = mi[HEAD, I_TARGETS]
    n_ab = n_spells + mi[HEAD, I_AURAS]
    for r in range(n_res):
        sync_resource(mi, mf, mk, si, sf, r, now)
    for s in range(n_spells):
        update_charges(mi, mf, mk, si, sf, s, now)
    # add / pct per stat: primary, crit, haste, mastery, versatility
    add0 = add1 = add2 = add3 = add4 = 0.0
    pct0 = pct1 = pct2 = pct3 = pct4 = 1.0
    haste_mult = 1.0
    for ab in range(n_ab):
        sf[MULT, ab] = 1.0
    for s in range(n_spells):
        sf[EF_CAST_MULT, s] = 1.0
    for e in range(mi[HEAD, I_EFFECTS]):
        a = mi[EF_AURA, e]
        if mi[AU_ON_TARGET, a]:
            continue
        stacks = si[IN_STACKS, a * n_targets]
        if stacks == 0:
            continue
        kind = mi[EF_TYPE, e]
        v = mf[EFF_VALUE, e] * stacks
        factor = 1.0 + v / 100.0
        stat = mi[EF_STAT, e]
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
                if mk[e, ab]:
                    sf[MULT, ab] *= max(0.0, factor)
        elif kind == EFFECT_CAST_TIME_PCT:
            for s in range(n_spells):
                if mk[e, s]:
                    sf[EF_CAST_MULT, s] *= max(0.0, factor)
    sf[HEAD, ST_PRIMARY] = max(0.0, (mf[HEAD, F_PRIMARY] + add0) * pct0)
    sf[HEAD, ST_CRIT] = min(1.0, max(0.0, (mf[HEAD, F_CRIT] * 100.0 + add1) * pct1 / 100.0))
    haste = (1.0 + (mf[HEAD, F_HASTE] * 100.0 + add2) * pct2 / 100.0) * haste_mult
    sf[HEAD, ST_HASTE] = min(10.0, max(0.1, haste))
    sf[HEAD, ST_MASTERY] = max(0.0, 1.0 + (mf[HEAD, F_MASTERY] * 100.0 + add3) * pct3 / 100.0)
    sf[HEAD, ST_VERSATILITY] = max(
        0.0, 1.0 + (mf[HEAD, F_VERSATILITY] * 100.0 + add4) * pct4 / 100.0
    )
    for s in range(n_spells):
        rate = 1.0
        for e in range(mi[HEAD, I_EFFECTS]):
            a = mi[EF_AURA, e]
            if mi[EF_TYPE, e] == EFFECT_COOLDOWN_RATE_PCT and mk[e, s]:
                stacks = si[IN_STACKS, a * n_targets]
                if stacks > 0:
                    rate *= 1.0 + mf[EFF_VALUE, e] * stacks / 100.0
        rate = min(100.0, max(0.01, rate))
        old = sf[EF_CD_RATE, s]
        if rate != old:
            left = si[EI_RECHARGE_END, s] - now
            if si[EI_CHARGES, s] < mi[SP_CHARGES, s] and left > 0:
                si[EI_RECHARGE_END, s] = now + round_ms(left * old / rate)
            sf[EF_CD_RATE, s] = rate
    for r in range(n_res):
        rate = mf[RSF_REGEN, r]
        for e in range(mi[HEAD, I_EFFECTS]):
            a = mi[EF_AURA, e]
            if mi[EF_TYPE, e] == EFFECT_REGEN_PCT and mi[EF_RESOURCE, e] == r:
                stacks = si[IN_STACKS, a * n_targets]
                if stacks > 0 and not mi[AU_ON_TARGET, a]:
                    rate *= 1.0 + mf[EFF_VALUE, e] * stacks / 100.0
        if mi[RES_HASTED, r]:
            rate *= sf[HEAD, ST_HASTE]
        sf[EF_RES_RATE, r] = rate


@jit
def refresh_target(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, slot: Int) -> None:
    """Recompute the damage-taken multipliers of target ``slot`` after its auras changed."""
    n_targets = mi[HEAD, I_TARGETS]
    n_ab = mi[HEAD, I_SPELLS] + mi[HEAD, I_AURAS]
    for ab in range(n_ab):
        sf[MULT + 1 + slot, ab] = 1.0
    for e in range(mi[HEAD, I_EFFECTS]):
        a = mi[EF_AURA, e]
        if not mi[AU_ON_TARGET, a] or mi[EF_TYPE, e] != EFFECT_DAMAGE_PCT:
            continue
        stacks = si[IN_STACKS, a * n_targets + slot]
        if stacks == 0:
            continue
        factor = max(0.0, 1.0 + mf[EFF_VALUE, e] * stacks / 100.0)
        for ab in range(n_ab):
            if mk[e, ab]:
                sf[MULT + 1 + slot, ab] *= factor


# --- damage -----------------------------------------------------------------------------


@jit
def deal_damage(
    mi: Array,
    mf: Array,
    mk: Array,
    si: Array,
    sf: Array,
    ab: Int,
    coeff: float,
    variance: float,
    can_crit: bool,
    mastery: bool,
    school: Int,
    target: Int,
    scale: float,
    tick: Int,
) -> bool:
    """One damage event of ability ``ab`` on ``target``; returns whether it crit."""
    amount = coeff * sf[HEAD, ST_PRIMARY] * scale
    amount *= sf[HEAD, ST_VERSATILITY] * sf[MULT, ab]
    amount *= sf[MULT + 1 + target, ab] * mf[HEAD, F_TAKEN + school]
    if mastery:
        amount *= sf[HEAD, ST_MASTERY]
    if variance > 0.0:
        amount *= 1.0 + variance * (2.0 * draw(si, np.int64(STREAM_VARIANCE)) - 1.0)
    crit = False
    if can_crit and draw(si, np.int64(STREAM_CRIT)) < sf[HEAD, ST_CRIT]:
        crit = True
        amount *= mf[HEAD, F_CRIT_MULTIPLIER]
    if amount >= MAX_HIT:
        dealt = MAX_HIT
        si[METRICS + MS_CLIPPED, mi[HEAD, I_MISC_ROW]] += 1
    else:
        dealt = int(max(0.0, amount))
    si[HEAD, N_DAMAGE] += dealt
    si[HEAD, N_DAMAGE_EVENTS] += 1
    si[METRICS + AB_DAMAGE, ab] += dealt
    if tick:
        si[METRICS + AB_TICKS, ab] += 1
        si[METRICS + AB_TICK_DAMAGE, ab] += dealt
        if crit:
            si[METRICS + AB_TICK_CRITS, ab] += 1
    else:
        si[METRICS + AB_HITS, ab] += 1
        si[METRICS + AB_DIRECT_DAMAGE, ab] += dealt
        if crit:
            si[METRICS + AB_CRITS, ab] += 1
    return crit


# --- auras ------------------------------------------------------------------------------


@jit
def aura_apply(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, a: Int, slot: Int, stacks: Int, now: Int
) -> None:
    """Apply (or refresh, adding stacks) aura ``a`` on ``slot`` (0 for player auras)."""
    inst = a * mi[HEAD, I_TARGETS] + slot
    aura_row = mi[HEAD, I_SPELLS] + mi[HEAD, I_AURAS]
    before = si[IN_STACKS, inst]
    after = min(before + stacks, mi[AU_MAX_STACKS, a])
    si[IN_STACKS, inst] = after
    period = mi[AU_PERIOD_MS, a]
    if period > 0:
        if mi[AU_PERIOD_HASTED, a]:
            period = max(1, round_ms(period / sf[HEAD, ST_HASTE]))
        si[IN_PERIOD, inst] = period
    duration = mi[AU_DURATION_MS, a]
    if mi[AU_CHANNEL_TICKS, a] > 0:
        duration = period * mi[AU_CHANNEL_TICKS, a]
    if before == 0:
        si[IN_UP_SINCE, inst] = now
        si[METRICS + AU_TRIGGERS, aura_row + a] += 1
        si[IN_EXPIRE, inst] = NEVER
        if duration > 0:
            si[IN_EXPIRE, inst] = now + duration
            schedule(si, 1 + inst, now + duration)
        if period > 0:
            si[IN_LAST_TICK, inst] = now
            if now + period <= si[IN_EXPIRE, inst]:
                schedule(si, tick_key(mi, inst), now + period)
    else:
        si[METRICS + AU_REFRESHES, aura_row + a] += 1
        if duration > 0:
            extra = 0
            if mi[AU_PANDEMIC, a]:
                extra = min(si[IN_EXPIRE, inst] - now, duration * 3 // 10)
            si[IN_EXPIRE, inst] = now + duration + extra
            schedule(si, 1 + inst, now + duration + extra)
        if period > 0 and si[HP_POS, tick_key(mi, inst)] < 0:
            nxt = max(si[IN_LAST_TICK, inst] + period, now)
            if nxt <= si[IN_EXPIRE, inst]:
                schedule(si, tick_key(mi, inst), nxt)
    if after != before and mi[AU_HAS_EFFECTS, a]:
        if mi[AU_ON_TARGET, a]:
            refresh_target(mi, mf, mk, si, sf, slot)
        else:
            refresh_player(mi, mf, mk, si, sf, now)


@jit
def aura_remove(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, a: Int, slot: Int, now: Int
) -> None:
    """Remove aura ``a`` from ``slot`` (no partial tick; see :func:`aura_expire`)."""
    inst = a * mi[HEAD, I_TARGETS] + slot
    if si[IN_STACKS, inst] == 0:
        return
    aura_row = mi[HEAD, I_SPELLS] + mi[HEAD, I_AURAS]
    si[METRICS + AU_UPTIME_MS, aura_row + a] += now - si[IN_UP_SINCE, inst]
    si[IN_STACKS, inst] = 0
    heap_cancel(si, 1 + inst)
    heap_cancel(si, tick_key(mi, inst))
    if mi[AU_HAS_EFFECTS, a]:
        if mi[AU_ON_TARGET, a]:
            refresh_target(mi, mf, mk, si, sf, slot)
        else:
            refresh_player(mi, mf, mk, si, sf, now)


@jit
def aura_tick(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, inst: Int, fraction: float, now: Int
) -> None:
    """One (possibly partial) tick of aura instance ``inst``."""
    n_targets = mi[HEAD, I_TARGETS]
    a, slot = inst // n_targets, inst % n_targets
    ab = mi[HEAD, I_SPELLS] + a
    target = slot if mi[AU_ON_TARGET, a] else 0
    si[IN_LAST_TICK, inst] = now
    crit = deal_damage(
        mi,
        mf,
        mk,
        si,
        sf,
        ab,
        mf[AUF_COEFF, a] * si[IN_STACKS, inst],
        mf[AUF_VARIANCE, a],
        mi[AU_CAN_CRIT, a] != 0,
        mi[AU_MASTERY, a] != 0,
        mi[AU_SCHOOL, a],
        target,
        fraction,
        np.int64(1),
    )
    proc_event(mi, mf, mk, si, sf, np.int64(ON_TICK), ab, now)
    if crit:
        proc_event(mi, mf, mk, si, sf, np.int64(ON_CRIT), ab, now)


@jit
def aura_tick_event(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, inst: Int, now: Int
) -> None:
    """The tick event of aura instance ``inst``: tick, then schedule the next one."""
    aura_tick(mi, mf, mk, si, sf, inst, np.float64(1.0), now)
    if si[IN_STACKS, inst] > 0:
        nxt = now + si[IN_PERIOD, inst]
        if nxt <= si[IN_EXPIRE, inst]:
            schedule(si, tick_key(mi, inst), nxt)


@jit
def aura_expire(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, inst: Int, now: Int) -> None:
    """The expiry event of aura instance ``inst``: a due tick, the partial last tick, removal."""
    n_targets = mi[HEAD, I_TARGETS]
    a = inst // n_targets
    if mi[AU_PERIOD_MS, a] > 0:
        key = tick_key(mi, inst)
        pos = si[HP_POS, key]
        if pos >= 0 and si[HP_TIME, pos] <= now:
            heap_cancel(si, key)
            aura_tick(mi, mf, mk, si, sf, inst, np.float64(1.0), now)
        last = si[IN_LAST_TICK, inst]
        if mi[AU_PARTIAL, a] and now > last and si[IN_STACKS, inst] > 0:
            aura_tick(mi, mf, mk, si, sf, inst, (now - last) / si[IN_PERIOD, inst], now)
    aura_remove(mi, mf, mk, si, sf, a, inst % n_targets, now)


# --- procs ------------------------------------------------------------------------------


@jit
def proc_attempt(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, p: Int, now: Int) -> None:
    """Roll proc ``p`` (flat chance, or RPPM with bad-luck protection) and apply it."""
    if now < si[EI_PROC_ICD, p]:
        return
    rppm = mf[PRF_RPPM, p]
    if rppm > 0.0:
        rate = rppm * sf[HEAD, ST_HASTE] if mi[PR_RPPM_HASTE, p] else rppm
        since_attempt = min(now - si[EI_PROC_ATTEMPT, p], 3500)
        chance = rate * since_attempt / 60000.0
        if mi[PR_BLP, p]:
            since_proc = min(now - si[EI_PROC_LAST, p], 1000000)
            chance *= max(1.0, 1.0 + 3.0 * (since_proc * rppm / 60000.0 - 1.5))
        si[EI_PROC_ATTEMPT, p] = now
    else:
        chance = mf[PRF_CHANCE, p]
    if draw(si, np.int64(STREAM_PROC)) >= chance:
        return
    si[EI_PROC_LAST, p] = now
    si[EI_PROC_ICD, p] = now + mi[PR_ICD_MS, p]
    proc_row = mi[HEAD, I_SPELLS] + 2 * mi[HEAD, I_AURAS]
    si[METRICS + PROC_COUNT, proc_row + p] += 1
    a = mi[PR_AURA, p]
    if a >= 0:
        aura_apply(mi, mf, mk, si, sf, a, np.int64(0), mi[PR_STACKS, p], now)
    for r in range(mi[HEAD, I_RESOURCES]):
        if mf[PRF_GAIN + r, p] > 0.0:
            sync_resource(mi, mf, mk, si, sf, r, now)
            gain_resource(mi, mf, mk, si, sf, r, mf[PRF_GAIN + r, p])
    s = mi[PR_RESET, p]
    if s >= 0:
        update_charges(mi, mf, mk, si, sf, s, now)
        si[EI_CHARGES, s] = mi[SP_CHARGES, s]
    s = mi[PR_SPELL, p]
    if s >= 0:
        push_spell(mi, si, s)


@jit
def proc_event(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, on: Int, ab: Int, now: Int
) -> None:
    """Offer a cast / hit / crit / tick of ability ``ab`` to every proc listening for it."""
    first = mi[HEAD, I_EFFECTS]
    for p in range(mi[HEAD, I_PROCS]):
        if mi[PR_ON, p] == on and mk[first + p, ab]:
            proc_attempt(mi, mf, mk, si, sf, p, now)


# --- spells -----------------------------------------------------------------------------


@jit
def push_spell(mi: Array, si: Array, s: Int) -> None:
    """Queue a triggered spell (executed by :func:`run_triggered`)."""
    w = si[HEAD, N_WORK]
    if w < mi[HEAD, I_WORK_CAP]:
        si[WORK, w] = s
        si[HEAD, N_WORK] = w + 1
    else:
        si[METRICS + MS_CLIPPED, mi[HEAD, I_MISC_ROW]] += 1


@jit
def execute(
    mi: Array, mf: Array, mk: Array, si: Array, sf: Array, s: Int, from_rotation: Int, now: Int
) -> None:
    """Execute spell ``s``: pay, start its cooldown, deal damage, apply auras, trigger."""
    n_res, n_targets = mi[HEAD, I_RESOURCES], mi[HEAD, I_TARGETS]
    scale = 1.0
    fr = mi[SP_FINISHER_RES, s]
    if fr >= 0:
        scale = spend_resource(mi, mf, mk, si, sf, fr, mf[RSF_MAX, fr], now)
    for r in range(n_res):
        if mf[SPF_COST + r, s] > 0.0:
            spend_resource(mi, mf, mk, si, sf, r, mf[SPF_COST + r, s], now)
        if mf[SPF_GAIN + r, s] > 0.0:
            sync_resource(mi, mf, mk, si, sf, r, now)
            gain_resource(mi, mf, mk, si, sf, r, mf[SPF_GAIN + r, s])
    if from_rotation:
        use_charge(mi, mf, mk, si, sf, s, now)
    si[METRICS + AB_EXECUTES, s] += 1
    first = mi[SP_CONSUME_START, s]
    for k in range(first, first + mi[SP_CONSUME_COUNT, s]):
        aura_remove(mi, mf, mk, si, sf, mi[LINKS, k], np.int64(0), now)
    proc_event(mi, mf, mk, si, sf, np.int64(ON_CAST), s, now)
    n_hit = min(mi[SP_TARGETS, s], n_targets)
    coeff = mf[SPF_COEFF, s]
    if coeff > 0.0:
        for t in range(n_hit):
            crit = deal_damage(
                mi,
                mf,
                mk,
                si,
                sf,
                s,
                coeff,
                mf[SPF_VARIANCE, s],
                mi[SP_CAN_CRIT, s] != 0,
                mi[SP_MASTERY, s] != 0,
                mi[SP_SCHOOL, s],
                t,
                scale,
                np.int64(0),
            )
            proc_event(mi, mf, mk, si, sf, np.int64(ON_HIT), s, now)
            if crit:
                proc_event(mi, mf, mk, si, sf, np.int64(ON_CRIT), s, now)
    first = mi[SP_APPLY_START, s]
    for k in range(first, first + 2 * mi[SP_APPLY_COUNT, s], 2):
        a = mi[LINKS, k]
        if mi[AU_ON_TARGET, a]:
            last = 1 if mi[SP_AURA_PRIMARY, s] else n_hit
            for t in range(last):
                aura_apply(mi, mf, mk, si, sf, a, t, mi[LINKS, k + 1], now)
        else:
            aura_apply(mi, mf, mk, si, sf, a, np.int64(0), mi[LINKS, k + 1], now)
    if mi[SP_CHANNEL_AURA, s] >= 0:
        aura_apply(mi, mf, mk, si, sf, mi[SP_CHANNEL_AURA, s], np.int64(0), np.int64(1), now)
    first = mi[SP_TRIGGER_START, s]
    for k in range(first, first + mi[SP_TRIGGER_COUNT, s]):
        push_spell(mi, si, mi[LINKS, k])


@jit
def run_triggered(mi: Array, mf: Array, mk: Array, si: Array, sf: Array, now: Int) -> None:
    """Execute queued triggered spells until none is left (the trigger graph is acyclic)."""
    while si[HEAD, N_WORK] > 0:
        w = si[HEAD, N_WORK] - 1
        si[HEAD, N_WORK] = w
        execute(mi, mf, mk, si, sf, si[WORK, w], np.int64(0), now)
