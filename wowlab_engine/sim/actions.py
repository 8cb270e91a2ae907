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
    HP_POS,
    HP_TIME,
    I_AURAS,
    I_EFFECTS,
    I_PROCS,
    I_RESOURCES,
    I_SPELLS,
    I_TARGETS,
    IN_EXPIRE,
    IN_LAST_TICK,
    IN_PERIOD,
    IN_STACKS,
    IN_UP_SINCE,
    MAX_HIT,
    MS_CLIPPED,
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
)
from .rng import STREAM_CRIT, STREAM_PROC, STREAM_VARIANCE, draw_unit

# --- plumbing ---------------------------------------------------------------------------


@jit
def draw(st, stream: int) -> float:
    """Next uniform draw in [0, 1) of ``stream`` for the current iteration."""
    c = st.ei[EI_RNG_COUNTER, stream]
    st.ei[EI_RNG_COUNTER, stream] = c + 1
    return draw_unit(st.ei[EI_RNG_KEY, stream], c)


@jit
def schedule(st, key: int, time: int) -> None:
    """Schedule (or move) the event ``key`` at ``time``."""
    seq = st.n[N_SEQ]
    st.n[N_SEQ] = seq + 1
    heap_schedule(st.heap, st.n, key, time, seq)


@jit
def tick_key(m, inst: int) -> int:
    """Heap key of the next tick of aura instance ``inst`` (its expiry is ``1 + inst``)."""
    return 1 + m.ints[I_AURAS] * m.ints[I_TARGETS] + inst


@jit
def round_ms(x: float) -> int:
    """Round a non-negative duration in ms to the nearest integer."""
    return int(x + 0.5)


# --- resources --------------------------------------------------------------------------


@jit
def sync_resource(m, st, r: int, now: int) -> None:
    """Bring resource ``r`` up to ``now``: add regeneration, record overflow."""
    dt = now - st.ei[EI_RES_LAST, r]
    if dt > 0:
        rate = st.ef[EF_RES_RATE, r]
        if rate > 0.0:
            gain_resource(m, st, r, rate * dt)
        st.ei[EI_RES_LAST, r] = now


@jit
def gain_resource(m, st, r: int, amount: float) -> None:
    """Add ``amount`` of resource ``r`` (synced already); what does not fit is overflow."""
    value = st.ef[EF_RES_VALUE, r] + amount
    cap = m.f[RSF_MAX, r]
    if value > cap:
        st.ef[EF_RES_OVERFLOW, r] += value - cap
        amount -= value - cap
        value = cap
    st.ef[EF_RES_VALUE, r] = value
    st.ef[EF_RES_GAINED, r] += amount


@jit
def spend_resource(m, st, r: int, amount: float, now: int) -> float:
    """Spend up to ``amount`` of resource ``r``; return what was spent."""
    sync_resource(m, st, r, now)
    spent = min(amount, st.ef[EF_RES_VALUE, r])
    st.ef[EF_RES_VALUE, r] -= spent
    st.ef[EF_RES_SPENT, r] += spent
    return spent


# --- cooldowns --------------------------------------------------------------------------


@jit
def recharge_ms(m, st, s: int) -> int:
    """Duration of one recharge of spell ``s`` if it started now."""
    cd = m.i[SP_COOLDOWN_MS, s] / st.ef[EF_CD_RATE, s]
    if m.i[SP_COOLDOWN_HASTED, s]:
        cd = cd / st.stat[ST_HASTE]
    return max(1, round_ms(cd))


@jit
def update_charges(m, st, s: int, now: int) -> None:
    """Credit the charges of spell ``s`` that have recharged by ``now``."""
    top = m.i[SP_CHARGES, s]
    while st.ei[EI_CHARGES, s] < top and st.ei[EI_RECHARGE_END, s] <= now:
        st.ei[EI_CHARGES, s] += 1
        if st.ei[EI_CHARGES, s] < top:
            st.ei[EI_RECHARGE_END, s] += recharge_ms(m, st, s)


@jit
def use_charge(m, st, s: int, now: int) -> None:
    """Spend a charge of spell ``s`` (start its cooldown)."""
    if m.i[SP_COOLDOWN_MS, s] <= 0:
        return
    update_charges(m, st, s, now)
    if st.ei[EI_CHARGES, s] == m.i[SP_CHARGES, s]:
        st.ei[EI_RECHARGE_END, s] = now + recharge_ms(m, st, s)
    if st.ei[EI_CHARGES, s] > 0:
        st.ei[EI_CHARGES, s] -= 1


# --- stats and multipliers ---------------------------------------------------------------


@jit
def refresh_player(m, st, now: int) -> None:
    """Recompute stats, damage multipliers and rates after a player aura changed."""
    n_res, n_spells = m.ints[I_RESOURCES], m.ints[I_SPELLS]
    n_targets = m.ints[I_TARGETS]
    n_ab = st.mult.shape[1]
    for r in range(n_res):
        sync_resource(m, st, r, now)
    for s in range(n_spells):
        update_charges(m, st, s, now)
    # add / pct per stat: primary, crit, haste, mastery, versatility
    add0 = add1 = add2 = add3 = add4 = 0.0
    pct0 = pct1 = pct2 = pct3 = pct4 = 1.0
    haste_mult = 1.0
    for ab in range(n_ab):
        st.mult[0, ab] = 1.0
    for s in range(n_spells):
        st.ef[EF_CAST_MULT, s] = 1.0
    for e in range(m.ints[I_EFFECTS]):
        a = m.i[EF_AURA, e]
        if m.i[AU_ON_TARGET, a]:
            continue
        stacks = st.inst[IN_STACKS, a * n_targets]
        if stacks == 0:
            continue
        kind = m.i[EF_TYPE, e]
        v = m.f[EFF_VALUE, e] * stacks
        factor = 1.0 + v / 100.0
        stat = m.i[EF_STAT, e]
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
                if m.mask[e, ab]:
                    st.mult[0, ab] *= max(0.0, factor)
        elif kind == EFFECT_CAST_TIME_PCT:
            for s in range(n_spells):
                if m.mask[e, s]:
                    st.ef[EF_CAST_MULT, s] *= max(0.0, factor)
    fl = m.floats
    st.stat[ST_PRIMARY] = max(0.0, (fl[F_PRIMARY] + add0) * pct0)
    st.stat[ST_CRIT] = min(1.0, max(0.0, (fl[F_CRIT] * 100.0 + add1) * pct1 / 100.0))
    haste = (1.0 + (fl[F_HASTE] * 100.0 + add2) * pct2 / 100.0) * haste_mult
    st.stat[ST_HASTE] = min(10.0, max(0.1, haste))
    st.stat[ST_MASTERY] = max(0.0, 1.0 + (fl[F_MASTERY] * 100.0 + add3) * pct3 / 100.0)
    st.stat[ST_VERSATILITY] = max(0.0, 1.0 + (fl[F_VERSATILITY] * 100.0 + add4) * pct4 / 100.0)
    for s in range(n_spells):
        rate = 1.0
        for e in range(m.ints[I_EFFECTS]):
            a = m.i[EF_AURA, e]
            if m.i[EF_TYPE, e] == EFFECT_COOLDOWN_RATE_PCT and m.mask[e, s]:
                stacks = st.inst[IN_STACKS, a * n_targets]
                if stacks > 0:
                    rate *= 1.0 + m.f[EFF_VALUE, e] * stacks / 100.0
        rate = min(100.0, max(0.01, rate))
        old = st.ef[EF_CD_RATE, s]
        if rate != old:
            left = st.ei[EI_RECHARGE_END, s] - now
            if st.ei[EI_CHARGES, s] < m.i[SP_CHARGES, s] and left > 0:
                st.ei[EI_RECHARGE_END, s] = now + round_ms(left * old / rate)
            st.ef[EF_CD_RATE, s] = rate
    for r in range(n_res):
        rate = m.f[RSF_REGEN, r]
        for e in range(m.ints[I_EFFECTS]):
            a = m.i[EF_AURA, e]
            if m.i[EF_TYPE, e] == EFFECT_REGEN_PCT and m.i[EF_RESOURCE, e] == r:
                stacks = st.inst[IN_STACKS, a * n_targets]
                if stacks > 0 and not m.i[AU_ON_TARGET, a]:
                    rate *= 1.0 + m.f[EFF_VALUE, e] * stacks / 100.0
        if m.i[RES_HASTED, r]:
            rate *= st.stat[ST_HASTE]
        st.ef[EF_RES_RATE, r] = rate


@jit
def refresh_target(m, st, slot: int) -> None:
    """Recompute the damage-taken multipliers of target ``slot`` after its auras changed."""
    n_targets = m.ints[I_TARGETS]
    n_ab = st.mult.shape[1]
    for ab in range(n_ab):
        st.mult[1 + slot, ab] = 1.0
    for e in range(m.ints[I_EFFECTS]):
        a = m.i[EF_AURA, e]
        if not m.i[AU_ON_TARGET, a] or m.i[EF_TYPE, e] != EFFECT_DAMAGE_PCT:
            continue
        stacks = st.inst[IN_STACKS, a * n_targets + slot]
        if stacks == 0:
            continue
        factor = max(0.0, 1.0 + m.f[EFF_VALUE, e] * stacks / 100.0)
        for ab in range(n_ab):
            if m.mask[e, ab]:
                st.mult[1 + slot, ab] *= factor


# --- damage -----------------------------------------------------------------------------


@jit
def deal_damage(
    m,
    st,
    ab: int,
    coeff: float,
    variance: float,
    can_crit: bool,
    mastery: bool,
    school: int,
    target: int,
    scale: float,
    tick: int,
) -> bool:
    """One damage event of ability ``ab`` on ``target``; returns whether it crit."""
    amount = coeff * st.stat[ST_PRIMARY] * scale
    amount *= st.stat[ST_VERSATILITY] * st.mult[0, ab]
    amount *= st.mult[1 + target, ab] * m.floats[F_TAKEN + school]
    if mastery:
        amount *= st.stat[ST_MASTERY]
    if variance > 0.0:
        amount *= 1.0 + variance * (2.0 * draw(st, np.int64(STREAM_VARIANCE)) - 1.0)
    crit = False
    if can_crit and draw(st, np.int64(STREAM_CRIT)) < st.stat[ST_CRIT]:
        crit = True
        amount *= m.floats[F_CRIT_MULTIPLIER]
    if amount >= MAX_HIT:
        dealt = MAX_HIT
        st.metrics[st.metrics.shape[0] - 1, MS_CLIPPED] += 1
    else:
        dealt = int(max(0.0, amount))
    st.n[N_DAMAGE] += dealt
    st.n[N_DAMAGE_EVENTS] += 1
    st.metrics[ab, AB_DAMAGE] += dealt
    if tick:
        st.metrics[ab, AB_TICKS] += 1
        st.metrics[ab, AB_TICK_DAMAGE] += dealt
        if crit:
            st.metrics[ab, AB_TICK_CRITS] += 1
    else:
        st.metrics[ab, AB_HITS] += 1
        st.metrics[ab, AB_DIRECT_DAMAGE] += dealt
        if crit:
            st.metrics[ab, AB_CRITS] += 1
    return crit


# --- auras ------------------------------------------------------------------------------


@jit
def aura_apply(m, st, a: int, slot: int, stacks: int, now: int) -> None:
    """Apply (or refresh, adding stacks) aura ``a`` on ``slot`` (0 for player auras)."""
    inst = a * m.ints[I_TARGETS] + slot
    aura_row = m.ints[I_SPELLS] + m.ints[I_AURAS]
    before = st.inst[IN_STACKS, inst]
    after = min(before + stacks, m.i[AU_MAX_STACKS, a])
    st.inst[IN_STACKS, inst] = after
    period = m.i[AU_PERIOD_MS, a]
    if period > 0:
        if m.i[AU_PERIOD_HASTED, a]:
            period = max(1, round_ms(period / st.stat[ST_HASTE]))
        st.inst[IN_PERIOD, inst] = period
    duration = m.i[AU_DURATION_MS, a]
    if m.i[AU_CHANNEL_TICKS, a] > 0:
        duration = period * m.i[AU_CHANNEL_TICKS, a]
    if before == 0:
        st.inst[IN_UP_SINCE, inst] = now
        st.metrics[aura_row + a, AU_TRIGGERS] += 1
        st.inst[IN_EXPIRE, inst] = NEVER
        if duration > 0:
            st.inst[IN_EXPIRE, inst] = now + duration
            schedule(st, 1 + inst, now + duration)
        if period > 0:
            st.inst[IN_LAST_TICK, inst] = now
            if now + period <= st.inst[IN_EXPIRE, inst]:
                schedule(st, tick_key(m, inst), now + period)
    else:
        st.metrics[aura_row + a, AU_REFRESHES] += 1
        if duration > 0:
            extra = 0
            if m.i[AU_PANDEMIC, a]:
                extra = min(st.inst[IN_EXPIRE, inst] - now, duration * 3 // 10)
            st.inst[IN_EXPIRE, inst] = now + duration + extra
            schedule(st, 1 + inst, now + duration + extra)
        if period > 0 and st.heap[HP_POS, tick_key(m, inst)] < 0:
            nxt = max(st.inst[IN_LAST_TICK, inst] + period, now)
            if nxt <= st.inst[IN_EXPIRE, inst]:
                schedule(st, tick_key(m, inst), nxt)
    if after != before and m.i[AU_HAS_EFFECTS, a]:
        if m.i[AU_ON_TARGET, a]:
            refresh_target(m, st, slot)
        else:
            refresh_player(m, st, now)


@jit
def aura_remove(m, st, a: int, slot: int, now: int) -> None:
    """Remove aura ``a`` from ``slot`` (no partial tick; see :func:`aura_expire`)."""
    inst = a * m.ints[I_TARGETS] + slot
    if st.inst[IN_STACKS, inst] == 0:
        return
    aura_row = m.ints[I_SPELLS] + m.ints[I_AURAS]
    st.metrics[aura_row + a, AU_UPTIME_MS] += now - st.inst[IN_UP_SINCE, inst]
    st.inst[IN_STACKS, inst] = 0
    heap_cancel(st.heap, st.n, 1 + inst)
    heap_cancel(st.heap, st.n, tick_key(m, inst))
    if m.i[AU_HAS_EFFECTS, a]:
        if m.i[AU_ON_TARGET, a]:
            refresh_target(m, st, slot)
        else:
            refresh_player(m, st, now)


@jit
def aura_tick(m, st, inst: int, fraction: float, now: int) -> None:
    """One (possibly partial) tick of aura instance ``inst``."""
    n_targets = m.ints[I_TARGETS]
    a, slot = inst // n_targets, inst % n_targets
    ab = m.ints[I_SPELLS] + a
    target = slot if m.i[AU_ON_TARGET, a] else 0
    st.inst[IN_LAST_TICK, inst] = now
    crit = deal_damage(
        m,
        st,
        ab,
        m.f[AUF_COEFF, a] * st.inst[IN_STACKS, inst],
        m.f[AUF_VARIANCE, a],
        m.i[AU_CAN_CRIT, a] != 0,
        m.i[AU_MASTERY, a] != 0,
        m.i[AU_SCHOOL, a],
        target,
        fraction,
        np.int64(1),
    )
    proc_event(m, st, np.int64(ON_TICK), ab, now)
    if crit:
        proc_event(m, st, np.int64(ON_CRIT), ab, now)


@jit
def aura_tick_event(m, st, inst: int, now: int) -> None:
    """The tick event of aura instance ``inst``: tick, then schedule the next one."""
    aura_tick(m, st, inst, np.float64(1.0), now)
    if st.inst[IN_STACKS, inst] > 0:
        nxt = now + st.inst[IN_PERIOD, inst]
        if nxt <= st.inst[IN_EXPIRE, inst]:
            schedule(st, tick_key(m, inst), nxt)


@jit
def aura_expire(m, st, inst: int, now: int) -> None:
    """The expiry event of aura instance ``inst``: a due tick, the partial last tick, removal."""
    n_targets = m.ints[I_TARGETS]
    a = inst // n_targets
    if m.i[AU_PERIOD_MS, a] > 0:
        key = tick_key(m, inst)
        pos = st.heap[HP_POS, key]
        if pos >= 0 and st.heap[HP_TIME, pos] <= now:
            heap_cancel(st.heap, st.n, key)
            aura_tick(m, st, inst, np.float64(1.0), now)
        last = st.inst[IN_LAST_TICK, inst]
        if m.i[AU_PARTIAL, a] and now > last and st.inst[IN_STACKS, inst] > 0:
            aura_tick(m, st, inst, (now - last) / st.inst[IN_PERIOD, inst], now)
    aura_remove(m, st, a, inst % n_targets, now)


# --- procs ------------------------------------------------------------------------------


@jit
def proc_attempt(m, st, p: int, now: int) -> None:
    """Roll proc ``p`` (flat chance, or RPPM with bad-luck protection) and apply it."""
    if now < st.ei[EI_PROC_ICD, p]:
        return
    rppm = m.f[PRF_RPPM, p]
    if rppm > 0.0:
        rate = rppm * st.stat[ST_HASTE] if m.i[PR_RPPM_HASTE, p] else rppm
        since_attempt = min(now - st.ei[EI_PROC_ATTEMPT, p], 3500)
        chance = rate * since_attempt / 60000.0
        if m.i[PR_BLP, p]:
            since_proc = min(now - st.ei[EI_PROC_LAST, p], 1000000)
            chance *= max(1.0, 1.0 + 3.0 * (since_proc * rppm / 60000.0 - 1.5))
        st.ei[EI_PROC_ATTEMPT, p] = now
    else:
        chance = m.f[PRF_CHANCE, p]
    if draw(st, np.int64(STREAM_PROC)) >= chance:
        return
    st.ei[EI_PROC_LAST, p] = now
    st.ei[EI_PROC_ICD, p] = now + m.i[PR_ICD_MS, p]
    proc_row = m.ints[I_SPELLS] + 2 * m.ints[I_AURAS]
    st.metrics[proc_row + p, PROC_COUNT] += 1
    a = m.i[PR_AURA, p]
    if a >= 0:
        aura_apply(m, st, a, np.int64(0), m.i[PR_STACKS, p], now)
    for r in range(m.ints[I_RESOURCES]):
        if m.f[PRF_GAIN + r, p] > 0.0:
            sync_resource(m, st, r, now)
            gain_resource(m, st, r, m.f[PRF_GAIN + r, p])
    s = m.i[PR_RESET, p]
    if s >= 0:
        update_charges(m, st, s, now)
        st.ei[EI_CHARGES, s] = m.i[SP_CHARGES, s]
    s = m.i[PR_SPELL, p]
    if s >= 0:
        push_spell(st, s)


@jit
def proc_event(m, st, on: int, ab: int, now: int) -> None:
    """Offer a cast / hit / crit / tick of ability ``ab`` to every proc listening for it."""
    first = m.ints[I_EFFECTS]
    for p in range(m.ints[I_PROCS]):
        if m.i[PR_ON, p] == on and m.mask[first + p, ab]:
            proc_attempt(m, st, p, now)


# --- spells -----------------------------------------------------------------------------


@jit
def push_spell(st, s: int) -> None:
    """Queue a triggered spell (executed by :func:`run_triggered`)."""
    w = st.n[N_WORK]
    if w < st.work.shape[0]:
        st.work[w] = s
        st.n[N_WORK] = w + 1
    else:
        st.metrics[st.metrics.shape[0] - 1, MS_CLIPPED] += 1


@jit
def execute(m, st, s: int, from_rotation: int, now: int) -> None:
    """Execute spell ``s``: pay, start its cooldown, deal damage, apply auras, trigger."""
    n_res, n_targets = m.ints[I_RESOURCES], m.ints[I_TARGETS]
    scale = 1.0
    fr = m.i[SP_FINISHER_RES, s]
    if fr >= 0:
        scale = spend_resource(m, st, fr, m.f[RSF_MAX, fr], now)
    for r in range(n_res):
        if m.f[SPF_COST + r, s] > 0.0:
            spend_resource(m, st, r, m.f[SPF_COST + r, s], now)
        if m.f[SPF_GAIN + r, s] > 0.0:
            sync_resource(m, st, r, now)
            gain_resource(m, st, r, m.f[SPF_GAIN + r, s])
    if from_rotation:
        use_charge(m, st, s, now)
    st.metrics[s, AB_EXECUTES] += 1
    first = m.i[SP_CONSUME_START, s]
    for k in range(first, first + m.i[SP_CONSUME_COUNT, s]):
        aura_remove(m, st, m.links[k], np.int64(0), now)
    proc_event(m, st, np.int64(ON_CAST), s, now)
    n_hit = min(m.i[SP_TARGETS, s], n_targets)
    coeff = m.f[SPF_COEFF, s]
    if coeff > 0.0:
        for t in range(n_hit):
            crit = deal_damage(
                m,
                st,
                s,
                coeff,
                m.f[SPF_VARIANCE, s],
                m.i[SP_CAN_CRIT, s] != 0,
                m.i[SP_MASTERY, s] != 0,
                m.i[SP_SCHOOL, s],
                t,
                scale,
                np.int64(0),
            )
            proc_event(m, st, np.int64(ON_HIT), s, now)
            if crit:
                proc_event(m, st, np.int64(ON_CRIT), s, now)
    first = m.i[SP_APPLY_START, s]
    for k in range(first, first + 2 * m.i[SP_APPLY_COUNT, s], 2):
        a = m.links[k]
        if m.i[AU_ON_TARGET, a]:
            last = 1 if m.i[SP_AURA_PRIMARY, s] else n_hit
            for t in range(last):
                aura_apply(m, st, a, t, m.links[k + 1], now)
        else:
            aura_apply(m, st, a, np.int64(0), m.links[k + 1], now)
    if m.i[SP_CHANNEL_AURA, s] >= 0:
        aura_apply(m, st, m.i[SP_CHANNEL_AURA, s], np.int64(0), np.int64(1), now)
    first = m.i[SP_TRIGGER_START, s]
    for k in range(first, first + m.i[SP_TRIGGER_COUNT, s]):
        push_spell(st, m.links[k])


@jit
def run_triggered(m, st, now: int) -> None:
    """Execute queued triggered spells until none is left (the trigger graph is acyclic)."""
    while st.n[N_WORK] > 0:
        w = st.n[N_WORK] - 1
        st.n[N_WORK] = w
        execute(m, st, st.work[w], np.int64(0), now)
