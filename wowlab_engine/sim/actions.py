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
    AU_EFFECT_KINDS,
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
    MASK,
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
    S_HEAD,
    S_STAT,
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
def draw(ti: Array, stream: Int) -> float:
    """Next uniform draw in [0, 1) of ``stream`` for the current iteration."""
    c = ti[EI_RNG_COUNTER, stream]
    ti[EI_RNG_COUNTER, stream] = c + 1
    return draw_unit(ti[EI_RNG_KEY, stream], c)


@jit
def schedule(ti: Array, key: Int, time: Int) -> None:
    """Schedule (or move) the event ``key`` at ``time``."""
    seq = ti[S_HEAD, N_SEQ]
    ti[S_HEAD, N_SEQ] = seq + 1
    heap_schedule(ti, key, time, seq)


@jit
def tick_key(ti: Array, inst: Int) -> Int:
    """Heap key of the next tick of aura instance ``inst`` (its expiry is ``1 + inst``)."""
    return int(1 + ti[HEAD, I_AURAS] * ti[HEAD, I_TARGETS] + inst)


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
            gain_resource(ti, tf, r, rate * dt)
        ti[EI_RES_LAST, r] = now


@jit
def gain_resource(ti: Array, tf: Array, r: Int, amount: float) -> None:
    """Add ``amount`` of resource ``r`` (synced already); what does not fit is overflow."""
    value = tf[EF_RES_VALUE, r] + amount
    cap = tf[RSF_MAX, r]
    if value > cap:
        tf[EF_RES_OVERFLOW, r] += value - cap
        amount -= value - cap
        value = cap
    tf[EF_RES_VALUE, r] = value
    tf[EF_RES_GAINED, r] += amount


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


# --- damage -----------------------------------------------------------------------------


@jit
def deal_damage(
    ti: Array,
    tf: Array,
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
    amount = coeff * tf[S_STAT, ST_PRIMARY] * scale
    amount *= tf[S_STAT, ST_VERSATILITY] * tf[MULT, ab]
    amount *= tf[MULT + 1 + target, ab] * tf[HEAD, F_TAKEN + school]
    if mastery:
        amount *= tf[S_STAT, ST_MASTERY]
    if variance > 0.0:
        amount *= 1.0 + variance * (2.0 * draw(ti, np.int64(STREAM_VARIANCE)) - 1.0)
    crit = False
    if can_crit and draw(ti, np.int64(STREAM_CRIT)) < tf[S_STAT, ST_CRIT]:
        crit = True
        amount *= tf[HEAD, F_CRIT_MULTIPLIER]
    if amount >= MAX_HIT:
        dealt = MAX_HIT
        ti[METRICS + MS_CLIPPED, ti[HEAD, I_MISC_ROW]] += 1
    else:
        dealt = int(max(0.0, amount))
    ti[S_HEAD, N_DAMAGE] += dealt
    ti[S_HEAD, N_DAMAGE_EVENTS] += 1
    ti[METRICS + AB_DAMAGE, ab] += dealt
    if tick:
        ti[METRICS + AB_TICKS, ab] += 1
        ti[METRICS + AB_TICK_DAMAGE, ab] += dealt
        if crit:
            ti[METRICS + AB_TICK_CRITS, ab] += 1
    else:
        ti[METRICS + AB_HITS, ab] += 1
        ti[METRICS + AB_DIRECT_DAMAGE, ab] += dealt
        if crit:
            ti[METRICS + AB_CRITS, ab] += 1
    return crit


# --- auras ------------------------------------------------------------------------------


@jit
def aura_apply(ti: Array, tf: Array, a: Int, slot: Int, stacks: Int, now: Int) -> None:
    """Apply (or refresh, adding stacks) aura ``a`` on ``slot`` (0 for player auras)."""
    inst = a * ti[HEAD, I_TARGETS] + slot
    aura_row = ti[HEAD, I_SPELLS] + ti[HEAD, I_AURAS]
    before = ti[IN_STACKS, inst]
    after = min(before + stacks, ti[AU_MAX_STACKS, a])
    ti[IN_STACKS, inst] = after
    period = ti[AU_PERIOD_MS, a]
    if period > 0:
        if ti[AU_PERIOD_HASTED, a]:
            period = max(1, round_ms(period / tf[S_STAT, ST_HASTE]))
        ti[IN_PERIOD, inst] = period
    duration = ti[AU_DURATION_MS, a]
    if ti[AU_CHANNEL_TICKS, a] > 0:
        duration = period * ti[AU_CHANNEL_TICKS, a]
    if before == 0:
        ti[IN_UP_SINCE, inst] = now
        ti[METRICS + AU_TRIGGERS, aura_row + a] += 1
        ti[IN_EXPIRE, inst] = NEVER
        if duration > 0:
            ti[IN_EXPIRE, inst] = now + duration
            schedule(ti, 1 + inst, now + duration)
        if period > 0:
            ti[IN_LAST_TICK, inst] = now
            if now + period <= ti[IN_EXPIRE, inst]:
                schedule(ti, tick_key(ti, inst), now + period)
    else:
        ti[METRICS + AU_REFRESHES, aura_row + a] += 1
        if duration > 0:
            extra = 0
            if ti[AU_PANDEMIC, a]:
                extra = min(ti[IN_EXPIRE, inst] - now, duration * 3 // 10)
            ti[IN_EXPIRE, inst] = now + duration + extra
            schedule(ti, 1 + inst, now + duration + extra)
        if period > 0 and ti[HP_POS, tick_key(ti, inst)] < 0:
            nxt = max(ti[IN_LAST_TICK, inst] + period, now)
            if nxt <= ti[IN_EXPIRE, inst]:
                schedule(ti, tick_key(ti, inst), nxt)
    if after != before and ti[AU_EFFECT_KINDS, a]:
        if ti[AU_ON_TARGET, a]:
            refresh_target(ti, tf, slot)
        else:
            refresh_player(ti, tf, now, ti[AU_EFFECT_KINDS, a])


@jit
def aura_remove(ti: Array, tf: Array, a: Int, slot: Int, now: Int) -> None:
    """Remove aura ``a`` from ``slot`` (no partial tick; see :func:`aura_expire`)."""
    inst = a * ti[HEAD, I_TARGETS] + slot
    if ti[IN_STACKS, inst] == 0:
        return
    aura_row = ti[HEAD, I_SPELLS] + ti[HEAD, I_AURAS]
    ti[METRICS + AU_UPTIME_MS, aura_row + a] += now - ti[IN_UP_SINCE, inst]
    ti[IN_STACKS, inst] = 0
    heap_cancel(ti, 1 + inst)
    heap_cancel(ti, tick_key(ti, inst))
    if ti[AU_EFFECT_KINDS, a]:
        if ti[AU_ON_TARGET, a]:
            refresh_target(ti, tf, slot)
        else:
            refresh_player(ti, tf, now, ti[AU_EFFECT_KINDS, a])


@jit
def aura_tick(ti: Array, tf: Array, inst: Int, fraction: float, now: Int) -> None:
    """One (possibly partial) tick of aura instance ``inst``."""
    n_targets = ti[HEAD, I_TARGETS]
    a, slot = inst // n_targets, inst % n_targets
    ab = ti[HEAD, I_SPELLS] + a
    target = slot if ti[AU_ON_TARGET, a] else 0
    ti[IN_LAST_TICK, inst] = now
    crit = deal_damage(
        ti,
        tf,
        ab,
        tf[AUF_COEFF, a] * ti[IN_STACKS, inst],
        tf[AUF_VARIANCE, a],
        ti[AU_CAN_CRIT, a] != 0,
        ti[AU_MASTERY, a] != 0,
        ti[AU_SCHOOL, a],
        target,
        fraction,
        np.int64(1),
    )
    proc_event(ti, tf, np.int64(ON_TICK), ab, now)
    if crit:
        proc_event(ti, tf, np.int64(ON_CRIT), ab, now)


@jit
def aura_tick_event(ti: Array, tf: Array, inst: Int, now: Int) -> None:
    """The tick event of aura instance ``inst``: tick, then schedule the next one."""
    aura_tick(ti, tf, inst, np.float64(1.0), now)
    if ti[IN_STACKS, inst] > 0:
        nxt = now + ti[IN_PERIOD, inst]
        if nxt <= ti[IN_EXPIRE, inst]:
            schedule(ti, tick_key(ti, inst), nxt)


@jit
def aura_expire(ti: Array, tf: Array, inst: Int, now: Int) -> None:
    """The expiry event of aura instance ``inst``: a due tick, the partial last tick, removal."""
    n_targets = ti[HEAD, I_TARGETS]
    a = inst // n_targets
    if ti[AU_PERIOD_MS, a] > 0:
        key = tick_key(ti, inst)
        pos = ti[HP_POS, key]
        if pos >= 0 and ti[HP_TIME, pos] <= now:
            heap_cancel(ti, key)
            aura_tick(ti, tf, inst, np.float64(1.0), now)
        last = ti[IN_LAST_TICK, inst]
        if ti[AU_PARTIAL, a] and now > last and ti[IN_STACKS, inst] > 0:
            aura_tick(ti, tf, inst, (now - last) / ti[IN_PERIOD, inst], now)
    aura_remove(ti, tf, a, inst % n_targets, now)


# --- procs ------------------------------------------------------------------------------


@jit
def proc_attempt(ti: Array, tf: Array, p: Int, now: Int) -> None:
    """Roll proc ``p`` (flat chance, or RPPM with bad-luck protection) and apply it."""
    if now < ti[EI_PROC_ICD, p]:
        return
    rppm = tf[PRF_RPPM, p]
    if rppm > 0.0:
        rate = rppm * tf[S_STAT, ST_HASTE] if ti[PR_RPPM_HASTE, p] else rppm
        since_attempt = min(now - ti[EI_PROC_ATTEMPT, p], 3500)
        chance = rate * since_attempt / 60000.0
        if ti[PR_BLP, p]:
            since_proc = min(now - ti[EI_PROC_LAST, p], 1000000)
            chance *= max(1.0, 1.0 + 3.0 * (since_proc * rppm / 60000.0 - 1.5))
        ti[EI_PROC_ATTEMPT, p] = now
    else:
        chance = tf[PRF_CHANCE, p]
    if draw(ti, np.int64(STREAM_PROC)) >= chance:
        return
    ti[EI_PROC_LAST, p] = now
    ti[EI_PROC_ICD, p] = now + ti[PR_ICD_MS, p]
    proc_row = ti[HEAD, I_SPELLS] + 2 * ti[HEAD, I_AURAS]
    ti[METRICS + PROC_COUNT, proc_row + p] += 1
    a = ti[PR_AURA, p]
    if a >= 0:
        aura_apply(ti, tf, a, np.int64(0), ti[PR_STACKS, p], now)
    for r in range(ti[HEAD, I_RESOURCES]):
        if tf[PRF_GAIN + r, p] > 0.0:
            sync_resource(ti, tf, r, now)
            gain_resource(ti, tf, r, tf[PRF_GAIN + r, p])
    s = ti[PR_RESET, p]
    if s >= 0:
        update_charges(ti, tf, s, now)
        ti[EI_CHARGES, s] = ti[SP_CHARGES, s]
    s = ti[PR_SPELL, p]
    if s >= 0:
        push_spell(ti, s)


@jit
def proc_event(ti: Array, tf: Array, on: Int, ab: Int, now: Int) -> None:
    """Offer a cast / hit / crit / tick of ability ``ab`` to every proc listening for it."""
    first = ti[HEAD, I_EFFECTS]
    for p in range(ti[HEAD, I_PROCS]):
        if ti[PR_ON, p] == on and ti[MASK + first + p, ab]:
            proc_attempt(ti, tf, p, now)


# --- spells -----------------------------------------------------------------------------


@jit
def push_spell(ti: Array, s: Int) -> None:
    """Queue a triggered spell (executed by :func:`run_triggered`)."""
    w = ti[S_HEAD, N_WORK]
    if w < ti[HEAD, I_WORK_CAP]:
        ti[WORK, w] = s
        ti[S_HEAD, N_WORK] = w + 1
    else:
        ti[METRICS + MS_CLIPPED, ti[HEAD, I_MISC_ROW]] += 1


@jit
def execute(ti: Array, tf: Array, s: Int, from_rotation: Int, now: Int) -> None:
    """Execute spell ``s``: pay, start its cooldown, deal damage, apply auras, trigger."""
    n_res, n_targets = ti[HEAD, I_RESOURCES], ti[HEAD, I_TARGETS]
    scale = 1.0
    fr = ti[SP_FINISHER_RES, s]
    if fr >= 0:
        scale = spend_resource(ti, tf, fr, tf[RSF_MAX, fr], now)
    for r in range(n_res):
        if tf[SPF_COST + r, s] > 0.0:
            spend_resource(ti, tf, r, tf[SPF_COST + r, s], now)
        if tf[SPF_GAIN + r, s] > 0.0:
            sync_resource(ti, tf, r, now)
            gain_resource(ti, tf, r, tf[SPF_GAIN + r, s])
    if from_rotation:
        use_charge(ti, tf, s, now)
    ti[METRICS + AB_EXECUTES, s] += 1
    first = ti[SP_CONSUME_START, s]
    for k in range(first, first + ti[SP_CONSUME_COUNT, s]):
        aura_remove(ti, tf, ti[LINKS, k], np.int64(0), now)
    proc_event(ti, tf, np.int64(ON_CAST), s, now)
    n_hit = min(ti[SP_TARGETS, s], n_targets)
    coeff = tf[SPF_COEFF, s]
    if coeff > 0.0:
        for t in range(n_hit):
            crit = deal_damage(
                ti,
                tf,
                s,
                coeff,
                tf[SPF_VARIANCE, s],
                ti[SP_CAN_CRIT, s] != 0,
                ti[SP_MASTERY, s] != 0,
                ti[SP_SCHOOL, s],
                t,
                scale,
                np.int64(0),
            )
            proc_event(ti, tf, np.int64(ON_HIT), s, now)
            if crit:
                proc_event(ti, tf, np.int64(ON_CRIT), s, now)
    first = ti[SP_APPLY_START, s]
    for k in range(first, first + 2 * ti[SP_APPLY_COUNT, s], 2):
        a = ti[LINKS, k]
        if ti[AU_ON_TARGET, a]:
            last = 1 if ti[SP_AURA_PRIMARY, s] else n_hit
            for t in range(last):
                aura_apply(ti, tf, a, t, ti[LINKS, k + 1], now)
        else:
            aura_apply(ti, tf, a, np.int64(0), ti[LINKS, k + 1], now)
    if ti[SP_CHANNEL_AURA, s] >= 0:
        aura_apply(ti, tf, ti[SP_CHANNEL_AURA, s], np.int64(0), np.int64(1), now)
    first = ti[SP_TRIGGER_START, s]
    for k in range(first, first + ti[SP_TRIGGER_COUNT, s]):
        push_spell(ti, ti[LINKS, k])


@jit
def run_triggered(ti: Array, tf: Array, now: Int) -> None:
    """Execute queued triggered spells until none is left (the trigger graph is acyclic)."""
    while ti[S_HEAD, N_WORK] > 0:
        w = ti[S_HEAD, N_WORK] - 1
        ti[S_HEAD, N_WORK] = w
        execute(ti, tf, ti[WORK, w], np.int64(0), now)
