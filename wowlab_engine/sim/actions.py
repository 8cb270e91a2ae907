"""What happens in combat: damage, auras and their ticks, procs, spell execution.

Functions take the two tables ``(ti, tf)`` of a run (:class:`~.model.State`) and the current
time ``now`` in milliseconds. Damage is computed with IEEE double products in a fixed order
(no fastmath) and truncated to an integer, so every machine and the pure-Python copy agree
bit for bit. Integer constants passed to other kernel functions are wrapped in
``np.int64``: numba would otherwise compile one copy of the callee per literal value.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .character import (
    gain_resource,
    refresh_player,
    refresh_target,
    round_ms,
    spend_resource,
    sync_resource,
    update_charges,
    use_charge,
)
from .heap import heap_cancel, heap_schedule
from .model import (
    AB_CRIT_DAMAGE,
    AB_CRITS,
    AB_DAMAGE,
    AB_DIRECT_DAMAGE,
    AB_EXECUTES,
    AB_HIT_MAX,
    AB_HIT_MIN,
    AB_HITS,
    AB_TICK_CRIT_DAMAGE,
    AB_TICK_CRITS,
    AB_TICK_DAMAGE,
    AB_TICK_MAX,
    AB_TICK_MIN,
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
    EI_CHARGES,
    EI_PROC_ATTEMPT,
    EI_PROC_ICD,
    EI_PROC_LAST,
    EI_RNG_COUNTER,
    EI_RNG_KEY,
    F_CRIT_MULTIPLIER,
    F_TAKEN,
    HEAD,
    HP_POS,
    HP_TIME,
    I_AURAS,
    I_EFFECTS,
    I_LONG,
    I_MISC_ROW,
    I_PROCS,
    I_RESOURCES,
    I_SPELLS,
    I_ST_POINTS,
    I_ST_STEP_MS,
    I_TARGETS,
    I_TL_POINTS,
    I_TL_STEP_MS,
    I_WORK_CAP,
    IN_EXPIRE,
    IN_LAST_TICK,
    IN_PERIOD,
    IN_STACKS,
    IN_UP_SINCE,
    L_AURA,
    L_DAMAGE,
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
    RSF_MAX,
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
    TARGET_DAMAGE,
    WORK,
    Array,
    Int,
)
from .rng import STREAM_CRIT, STREAM_PROC, STREAM_VARIANCE, draw_unit

# --- plumbing ---------------------------------------------------------------------------

#: A draw's counter is ``sub-stream << SUB_STREAM_BITS`` plus its index in the sub-stream.
SUB_STREAM_BITS = 21
SUB_STREAM_MASK = (1 << SUB_STREAM_BITS) - 1


@jit
def draw(ti: Array, stream: Int, sub: Int) -> float:
    """Next uniform draw in [0, 1) of sub-stream ``sub`` of ``stream`` (current iteration).

    Each ability has its own crit and variance sub-stream and each proc its own proc
    sub-stream: the k-th crit roll of a spell is the same number in every config run with a
    seed, however many other rolls came before it, so variants stay in step (common random
    numbers) even when a change shifts other events.
    """
    row = EI_RNG_COUNTER + stream
    c = ti[row, sub]
    ti[row, sub] = c + 1
    return draw_unit(ti[EI_RNG_KEY, stream], (sub << SUB_STREAM_BITS) + (c & SUB_STREAM_MASK))


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
    now: Int,
) -> bool:
    """One damage event of ability ``ab`` on ``target``; returns whether it crit."""
    amount = coeff * tf[S_STAT, ST_PRIMARY] * scale
    amount *= tf[S_STAT, ST_VERSATILITY] * tf[MULT, ab]
    amount *= tf[MULT + 1 + target, ab] * tf[HEAD, F_TAKEN + school]
    if mastery:
        amount *= tf[S_STAT, ST_MASTERY]
    if variance > 0.0:
        amount *= 1.0 + variance * (2.0 * draw(ti, np.int64(STREAM_VARIANCE), ab) - 1.0)
    crit = False
    if can_crit and draw(ti, np.int64(STREAM_CRIT), ab) < tf[S_STAT, ST_CRIT]:
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
    ti[METRICS + TARGET_DAMAGE + target, ab] += dealt
    bucket = now // ti[HEAD, I_TL_STEP_MS]
    if bucket < ti[HEAD, I_TL_POINTS]:
        ti[ti[HEAD, I_LONG] + bucket, L_DAMAGE] += dealt
    if tick:
        ti[METRICS + AB_TICKS, ab] += 1
        ti[METRICS + AB_TICK_DAMAGE, ab] += dealt
        if crit:
            ti[METRICS + AB_TICK_CRITS, ab] += 1
            ti[METRICS + AB_TICK_CRIT_DAMAGE, ab] += dealt
        if dealt < ti[METRICS + AB_TICK_MIN, ab]:
            ti[METRICS + AB_TICK_MIN, ab] = dealt
        if dealt > ti[METRICS + AB_TICK_MAX, ab]:
            ti[METRICS + AB_TICK_MAX, ab] = dealt
    else:
        ti[METRICS + AB_HITS, ab] += 1
        ti[METRICS + AB_DIRECT_DAMAGE, ab] += dealt
        if crit:
            ti[METRICS + AB_CRITS, ab] += 1
            ti[METRICS + AB_CRIT_DAMAGE, ab] += dealt
        if dealt < ti[METRICS + AB_HIT_MIN, ab]:
            ti[METRICS + AB_HIT_MIN, ab] = dealt
        if dealt > ti[METRICS + AB_HIT_MAX, ab]:
            ti[METRICS + AB_HIT_MAX, ab] = dealt
    return crit


# --- auras ------------------------------------------------------------------------------


@jit
def uptime_timeline(ti: Array, a: Int, start: Int, end: Int) -> None:
    """Add aura ``a``'s uptime ``[start, end)`` to its buckets of the aura timeline."""
    step = ti[HEAD, I_ST_STEP_MS]
    row = ti[HEAD, I_LONG]
    k = start // step
    while k < ti[HEAD, I_ST_POINTS] and k * step < end:
        lo = max(start, k * step)
        hi = min(end, (k + 1) * step)
        ti[row + k, L_AURA + a] += hi - lo
        k += 1


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
    uptime_timeline(ti, a, ti[IN_UP_SINCE, inst], now)
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
        now,
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
            # SimC's real_ppm_t: the interval is that of the hasted real_ppm, 60 / rate.
            chance *= max(1.0, 1.0 + 3.0 * (since_proc * rate / 60000.0 - 1.5))
        ti[EI_PROC_ATTEMPT, p] = now
    else:
        chance = tf[PRF_CHANCE, p]
    if draw(ti, np.int64(STREAM_PROC), p) >= chance:
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
            gain_resource(ti, tf, r, tf[PRF_GAIN + r, p], ti[HEAD, I_SPELLS] + p)
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
            gain_resource(ti, tf, r, tf[SPF_GAIN + r, s], s)
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
                now,
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
