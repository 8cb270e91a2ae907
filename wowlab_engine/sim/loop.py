"""The event loop: the actor's decisions, the events, one iteration, a block of iterations.

Time is integer milliseconds. Heap events at time ``t`` run before the actor's decision at
``t``. The actor decides when its cast and GCD are over: it walks the priority list and
casts the first usable spell whose condition holds; if none, it waits until a cooldown or a
resource will be ready, an event changes the state, or ``POLL_MS`` passes.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .actions import (
    aura_apply,
    aura_expire,
    aura_tick_event,
    execute,
    run_triggered,
    schedule,
    uptime_timeline,
)
from .character import refresh_player, refresh_target, round_ms, sync_resource, update_charges
from .heap import heap_pop
from .model import (
    AB_EXECUTE_MS,
    ALL_KINDS,
    AU_UPTIME_MS,
    COND,
    CONSTS,
    EF_CAST_MULT,
    EF_CD_RATE,
    EF_RES_GAINED,
    EF_RES_OVERFLOW,
    EF_RES_RATE,
    EF_RES_SPENT,
    EF_RES_VALUE,
    EI_CHARGES,
    EI_PROC_ATTEMPT,
    EI_PROC_ICD,
    EI_PROC_LAST,
    EI_RECHARGE_END,
    EI_RES_LAST,
    EI_RNG_COUNTER,
    EI_RNG_KEY,
    HEAD,
    HP_POS,
    HP_TIME,
    I_AURAS,
    I_CODE_START,
    I_FIGHT_MS,
    I_FIGHT_VARY_MS,
    I_LONG,
    I_MISC_ROW,
    I_PRECOMBAT_COUNT,
    I_PRECOMBAT_START,
    I_RESOURCES,
    I_ROTATION,
    I_SEQ_CAP,
    I_SPELLS,
    I_ST_POINTS,
    I_ST_STEP_MS,
    I_TARGETS,
    I_TL_POINTS,
    I_TL_STEP_MS,
    IN_EXPIRE,
    IN_STACKS,
    IN_UP_SINCE,
    KEY_CAST,
    L_FIGHT_MS,
    L_RESOURCE,
    L_SAMPLES,
    L_SEQUENCE,
    LINKS,
    MAX_COLUMNS,
    MAX_DAMAGE_EVENTS_PER_ITERATION,
    MAX_EVENTS_PER_ITERATION,
    METRICS,
    MIN_COLUMNS,
    MS_CASTS,
    MS_DAMAGE_EVENTS,
    MS_EVENTS,
    MS_FIGHT_MS,
    MS_TRUNCATED,
    N_BUSY_UNTIL,
    N_CAST_SPELL,
    N_DAMAGE,
    N_DAMAGE_EVENTS,
    N_DECISION,
    N_EVENTS,
    N_FIGHT_MS,
    N_GCD_READY,
    N_HEAP_SIZE,
    N_METRIC_COLUMNS,
    N_NEXT_SAMPLE,
    N_SAMPLE,
    N_SEQ_LEN,
    N_SEQ_ON,
    N_TRUNCATED,
    NEVER,
    NO_MIN,
    POLL_MS,
    ROT_COUNT,
    ROT_SPELL,
    ROT_START,
    RS_GAINED,
    RS_OVERFLOW,
    RS_SPENT,
    RSF_MAX,
    RSF_START,
    S_HEAD,
    S_STAT,
    SEQ_PRESENT,
    SEQ_RESOURCE_MAX,
    SEQ_RESOURCE_SHIFT,
    SEQ_SPELL_SHIFT,
    SP_CAST_MS,
    SP_CHANNEL_AURA,
    SP_CHARGES,
    SP_COOLDOWN_MS,
    SP_FINISHER_RES,
    SP_GCD_HASTED,
    SP_GCD_MIN_MS,
    SP_GCD_MS,
    SP_OFF_GCD,
    SPF_COST,
    SPF_FINISHER_MIN,
    ST_HASTE,
    Array,
    Int,
)
from .opcodes import (
    OP_ACTIVE_ENEMIES,
    OP_AND,
    OP_AURA_REMAINS,
    OP_AURA_STACK,
    OP_CHARGES,
    OP_CONST,
    OP_COOLDOWN_REMAINS,
    OP_EQ,
    OP_FIGHT_REMAINS,
    OP_GE,
    OP_GT,
    OP_HEALTH_PCT,
    OP_IS_TRUE,
    OP_LE,
    OP_LT,
    OP_NE,
    OP_NOT,
    OP_OR,
    OP_RESOURCE,
    OP_TIME,
)
from .rng import N_STREAMS, STREAM_FIGHT, draw_u32, stream_key

# --- decisions --------------------------------------------------------------------------


@jit
def ready_at(ti: Array, tf: Array, s: Int, now: Int) -> Int:
    """When spell ``s`` will be castable as far as cooldown and resources go (``now`` if now)."""
    t = now
    if ti[SP_COOLDOWN_MS, s] > 0:
        update_charges(ti, tf, s, now)
        if ti[EI_CHARGES, s] == 0:
            t = max(t, ti[EI_RECHARGE_END, s])
    for r in range(ti[HEAD, I_RESOURCES]):
        need = tf[SPF_COST + r, s]
        if ti[SP_FINISHER_RES, s] == r:
            need = max(need, tf[SPF_FINISHER_MIN, s])
        if need <= 0.0:
            continue
        sync_resource(ti, tf, r, now)
        missing = need - tf[EF_RES_VALUE, r]
        if missing > 0.0:
            rate = tf[EF_RES_RATE, r]
            if rate <= 0.0:
                return NEVER
            wait = missing / rate
            whole = int(wait)
            t = max(t, now + whole + (1 if wait > whole else 0))
    return t


@jit
def condition_holds(ti: Array, tf: Array, e: Int, now: Int) -> bool:
    """Evaluate the compiled condition of rotation entry ``e``."""
    count = ti[ROT_COUNT, e]
    if count == 0:
        return True
    n_targets = ti[HEAD, I_TARGETS]
    fight = ti[S_HEAD, N_FIGHT_MS]
    sp = 0
    start = ti[HEAD, I_CODE_START] + 2 * ti[ROT_START, e]
    for k in range(start, start + 2 * count, 2):
        op = ti[LINKS, k]
        arg = ti[LINKS, k + 1]
        if op < 20:
            value = 0.0
            if op == OP_CONST:
                value = tf[CONSTS, arg]
            elif op == OP_TIME:
                value = now / 1000.0
            elif op == OP_FIGHT_REMAINS:
                value = (fight - now) / 1000.0
            elif op == OP_HEALTH_PCT:
                value = 100.0 * (fight - now) / fight
            elif op == OP_ACTIVE_ENEMIES:
                value = float(n_targets)
            elif op == OP_RESOURCE:
                sync_resource(ti, tf, arg, now)
                value = tf[EF_RES_VALUE, arg]
            elif op == OP_AURA_STACK:
                value = float(ti[IN_STACKS, arg * n_targets])
            elif op == OP_AURA_REMAINS:
                inst = arg * n_targets
                if ti[IN_STACKS, inst] > 0:
                    # SimC: the time until the aura's own expiry, never capped at the fight's
                    # end (an APL guards refreshes with fight_remains).
                    value = (ti[IN_EXPIRE, inst] - now) / 1000.0
            elif op == OP_CHARGES:
                value = 1.0
                if ti[SP_COOLDOWN_MS, arg] > 0:
                    update_charges(ti, tf, arg, now)
                    value = float(ti[EI_CHARGES, arg])
            elif op == OP_COOLDOWN_REMAINS and ti[SP_COOLDOWN_MS, arg] > 0:
                update_charges(ti, tf, arg, now)
                if ti[EI_CHARGES, arg] == 0:
                    value = (ti[EI_RECHARGE_END, arg] - now) / 1000.0
            tf[COND, sp] = value
            sp += 1
        elif op == OP_NOT:
            tf[COND, sp - 1] = 1.0 if tf[COND, sp - 1] == 0.0 else 0.0
        elif op == OP_IS_TRUE:
            tf[COND, sp - 1] = 0.0 if tf[COND, sp - 1] == 0.0 else 1.0
        else:
            b = tf[COND, sp - 1]
            a = tf[COND, sp - 2]
            sp -= 1
            result = False
            if op == OP_LT:
                result = a < b
            elif op == OP_LE:
                result = a <= b
            elif op == OP_GT:
                result = a > b
            elif op == OP_GE:
                result = a >= b
            elif op == OP_EQ:
                result = a == b
            elif op == OP_NE:
                result = a != b
            elif op == OP_AND:
                result = a != 0.0 and b != 0.0
            elif op == OP_OR:
                result = a != 0.0 or b != 0.0
            tf[COND, sp - 1] = 1.0 if result else 0.0
    return bool(tf[COND, 0] != 0.0)


@jit
def resource_at(ti: Array, tf: Array, r: Int, t: Int) -> float:
    """Resource ``r`` at ``t`` (not before its last update), without changing the state.

    Between events nothing changes but regeneration (rates change only after a sync), so
    this is the value at its last update plus regeneration since, up to its maximum.
    """
    value = tf[EF_RES_VALUE, r] + tf[EF_RES_RATE, r] * (t - ti[EI_RES_LAST, r])
    return float(max(0.0, min(value, tf[RSF_MAX, r])))


@jit
def record_cast(ti: Array, tf: Array, s: Int, now: Int) -> None:
    """Add a cast to the sample sequence: time, spell, the first resource before it."""
    n = ti[S_HEAD, N_SEQ_LEN]
    if n >= ti[HEAD, I_SEQ_CAP]:
        return
    value = 0
    if ti[HEAD, I_RESOURCES] > 0:
        value = min(int(resource_at(ti, tf, np.int64(0), now)), SEQ_RESOURCE_MAX)
    entry = now + (s << SEQ_SPELL_SHIFT) + (value << SEQ_RESOURCE_SHIFT) + SEQ_PRESENT
    ti[ti[HEAD, I_LONG] + n, L_SEQUENCE] = entry
    ti[S_HEAD, N_SEQ_LEN] = n + 1


@jit
def start_cast(ti: Array, tf: Array, s: Int, now: Int) -> None:
    """Begin casting spell ``s``: GCD, cast time or channel, or execute it if instant."""
    if ti[S_HEAD, N_SEQ_ON]:
        record_cast(ti, tf, s, now)
    haste = tf[S_STAT, ST_HASTE]
    gcd_ready = now
    if not ti[SP_OFF_GCD, s]:
        gcd = ti[SP_GCD_MS, s]
        if ti[SP_GCD_HASTED, s]:
            gcd = max(ti[SP_GCD_MIN_MS, s], round_ms(gcd / haste))
        gcd_ready = now + gcd
        ti[S_HEAD, N_GCD_READY] = gcd_ready
    busy = now
    cast = round_ms(ti[SP_CAST_MS, s] * tf[EF_CAST_MULT, s] / haste)
    channel = ti[SP_CHANNEL_AURA, s]
    if channel >= 0:
        execute(ti, tf, s, np.int64(1), now)
        busy = ti[IN_EXPIRE, channel * ti[HEAD, I_TARGETS]]
    elif cast > 0:
        ti[S_HEAD, N_CAST_SPELL] = s
        schedule(ti, np.int64(KEY_CAST), now + cast)
        busy = now + cast
    else:
        execute(ti, tf, s, np.int64(1), now)
    ti[S_HEAD, N_BUSY_UNTIL] = busy
    ti[S_HEAD, N_DECISION] = max(gcd_ready, busy)
    ti[METRICS + AB_EXECUTE_MS, s] += max(gcd_ready, busy) - now
    ti[METRICS + MS_CASTS, ti[HEAD, I_MISC_ROW]] += 1


@jit
def decide(ti: Array, tf: Array, now: Int) -> None:
    """The actor's decision at ``now``: cast the first usable spell of the priority list."""
    for _ in range(64):  # off-GCD spells can chain at one instant; each needs a cooldown
        wake = now + POLL_MS
        chosen = -1
        for e in range(ti[HEAD, I_ROTATION]):
            s = ti[ROT_SPELL, e]
            ready = ready_at(ti, tf, s, now)
            if ready > now:
                wake = min(wake, ready)
            elif condition_holds(ti, tf, e, now):
                chosen = s
                break
        if chosen < 0:
            ti[S_HEAD, N_DECISION] = wake
            return
        start_cast(ti, tf, chosen, now)
        run_triggered(ti, tf, now)
        if ti[S_HEAD, N_DECISION] > now:
            return
    ti[S_HEAD, N_DECISION] = now + POLL_MS


# --- iterations -------------------------------------------------------------------------


@jit
def reset(
    ti: Array,
    tf: Array,
    seed_lo: Int,
    seed_hi: Int,
    iteration: Int,
) -> None:
    """Start iteration ``iteration`` of the job: fresh state, random keys, fight length."""
    ti[S_HEAD, :] = 0
    ti[S_HEAD, N_CAST_SPELL] = -1
    ti[HP_POS, :] = -1
    for stream in range(N_STREAMS):
        ti[EI_RNG_KEY, stream] = stream_key(seed_lo, seed_hi, iteration, stream)
    ti[EI_RNG_COUNTER : EI_RNG_COUNTER + N_STREAMS, :] = 0
    vary = ti[HEAD, I_FIGHT_VARY_MS]
    offset = (draw_u32(ti[EI_RNG_KEY, STREAM_FIGHT], np.int64(0)) * (2 * vary + 1)) >> 32
    ti[S_HEAD, N_FIGHT_MS] = ti[HEAD, I_FIGHT_MS] + offset - vary
    ti[IN_STACKS, :] = 0
    for s in range(ti[HEAD, I_SPELLS]):
        ti[EI_CHARGES, s] = ti[SP_CHARGES, s]
        ti[EI_RECHARGE_END, s] = 0
        tf[EF_CD_RATE, s] = 1.0
    for r in range(ti[HEAD, I_RESOURCES]):
        tf[EF_RES_VALUE, r] = tf[RSF_START, r]
        ti[EI_RES_LAST, r] = 0
        tf[EF_RES_OVERFLOW, r] = 0.0
        tf[EF_RES_GAINED, r] = 0.0
        tf[EF_RES_SPENT, r] = 0.0
        tf[EF_RES_RATE, r] = 0.0
    ti[EI_PROC_ATTEMPT, :] = 0
    ti[EI_PROC_LAST, :] = 0
    ti[EI_PROC_ICD, :] = 0
    refresh_player(ti, tf, np.int64(0), np.int64(ALL_KINDS))
    for t in range(ti[HEAD, I_TARGETS]):
        refresh_target(ti, tf, t)
    first = ti[HEAD, I_PRECOMBAT_START]
    for k in range(first, first + ti[HEAD, I_PRECOMBAT_COUNT]):
        aura_apply(ti, tf, ti[LINKS, k], np.int64(0), np.int64(1), np.int64(0))


@jit
def handle_event(ti: Array, tf: Array, key: Int, now: Int) -> None:
    """Run the event ``key`` popped from the heap."""
    n_inst = ti[HEAD, I_AURAS] * ti[HEAD, I_TARGETS]
    if key == KEY_CAST:
        s = ti[S_HEAD, N_CAST_SPELL]
        ti[S_HEAD, N_CAST_SPELL] = -1
        execute(ti, tf, s, np.int64(1), now)
    elif key <= n_inst:
        aura_expire(ti, tf, key - 1, now)
    else:
        aura_tick_event(ti, tf, key - 1 - n_inst, now)
    run_triggered(ti, tf, now)


@jit
def take_samples(ti: Array, tf: Array, until: Int) -> None:
    """Sample the resources at every resource-timeline bucket start up to ``until``."""
    step = ti[HEAD, I_ST_STEP_MS]
    row = ti[HEAD, I_LONG]
    k = ti[S_HEAD, N_SAMPLE]
    while k < ti[HEAD, I_ST_POINTS] and k * step <= until:
        t = k * step
        ti[row + k, L_SAMPLES] += 1
        for r in range(ti[HEAD, I_RESOURCES]):
            ti[row + k, L_RESOURCE + r] += round_ms(resource_at(ti, tf, r, t) * 1000.0)
        k += 1
    ti[S_HEAD, N_SAMPLE] = k
    ti[S_HEAD, N_NEXT_SAMPLE] = k * step


@jit
def run_iteration(
    ti: Array,
    tf: Array,
    seed_lo: Int,
    seed_hi: Int,
    iteration: Int,
) -> None:
    """Simulate one fight; damage and fight length are left in ``ti[HEAD]``."""
    reset(ti, tf, seed_lo, seed_hi, iteration)
    ti[S_HEAD, N_SEQ_ON] = 1 if iteration == 0 else 0
    fight = ti[S_HEAD, N_FIGHT_MS]
    end = fight
    while True:
        decision = ti[S_HEAD, N_DECISION]
        next_event = ti[HP_TIME, 0] if ti[S_HEAD, N_HEAP_SIZE] > 0 else NEVER
        if min(decision, next_event) >= ti[S_HEAD, N_NEXT_SAMPLE]:
            take_samples(ti, tf, min(decision, next_event, fight - 1))
        if decision < next_event:
            if decision >= fight:
                break
            decide(ti, tf, decision)
        else:
            if next_event >= fight:
                break
            key = heap_pop(ti)
            handle_event(ti, tf, key, next_event)
            # An idle actor reconsiders after anything happened.
            idle_from = max(ti[S_HEAD, N_GCD_READY], ti[S_HEAD, N_BUSY_UNTIL])
            if ti[S_HEAD, N_DECISION] > next_event and idle_from <= next_event:
                ti[S_HEAD, N_DECISION] = next_event
        ti[S_HEAD, N_EVENTS] += 1
        if (
            ti[S_HEAD, N_EVENTS] >= MAX_EVENTS_PER_ITERATION
            or ti[S_HEAD, N_DAMAGE_EVENTS] >= MAX_DAMAGE_EVENTS_PER_ITERATION
        ):
            ti[S_HEAD, N_TRUNCATED] = 1
            end = min(fight, max(decision, next_event))
            break
    # Close the books: uptime of auras still up, regeneration up to the end, timelines.
    take_samples(ti, tf, fight - 1)
    n_targets = ti[HEAD, I_TARGETS]
    aura_row = ti[HEAD, I_SPELLS] + ti[HEAD, I_AURAS]
    for inst in range(n_targets * ti[HEAD, I_AURAS]):
        if ti[IN_STACKS, inst] > 0:
            ti[METRICS + AU_UPTIME_MS, aura_row + inst // n_targets] += end - ti[IN_UP_SINCE, inst]
            uptime_timeline(ti, inst // n_targets, ti[IN_UP_SINCE, inst], end)
    for r in range(ti[HEAD, I_RESOURCES]):
        sync_resource(ti, tf, r, end)
    step = ti[HEAD, I_TL_STEP_MS]
    row = ti[HEAD, I_LONG]
    for k in range(ti[HEAD, I_TL_POINTS]):
        if k * step >= fight:
            break
        ti[row + k, L_FIGHT_MS] += min(step, fight - k * step)


@jit
def run_block(
    ti: Array,
    tf: Array,
    seed_lo: Int,
    seed_hi: Int,
    first: Int,
    values: Array,
    scale: Int,
) -> None:
    """Run iterations ``first .. first + len(values)``; write per-iteration values.

    A value is ``damage * scale // fight_ms`` (``scale`` = fixed-point units per DPS times
    1000 ms), computed exactly in int64. Metrics are summed into the ``METRICS`` rows of ``ti``.
    """
    ti[METRICS : METRICS + N_METRIC_COLUMNS, :] = 0
    for column in MIN_COLUMNS:
        ti[METRICS + column, :] = NO_MIN
    for column in MAX_COLUMNS:
        ti[METRICS + column, :] = -1
    ti[ti[HEAD, I_LONG] :, :] = 0
    misc = ti[HEAD, I_MISC_ROW]
    res_row = misc - ti[HEAD, I_RESOURCES]
    for i in range(values.shape[0]):
        run_iteration(ti, tf, seed_lo, seed_hi, first + i)
        damage = ti[S_HEAD, N_DAMAGE]
        fight = ti[S_HEAD, N_FIGHT_MS]
        whole = damage // fight
        values[i] = whole * scale + (damage - whole * fight) * scale // fight
        ti[METRICS + MS_EVENTS, misc] += ti[S_HEAD, N_EVENTS]
        ti[METRICS + MS_FIGHT_MS, misc] += fight
        ti[METRICS + MS_TRUNCATED, misc] += ti[S_HEAD, N_TRUNCATED]
        ti[METRICS + MS_DAMAGE_EVENTS, misc] += ti[S_HEAD, N_DAMAGE_EVENTS]
        for r in range(ti[HEAD, I_RESOURCES]):
            ti[METRICS + RS_OVERFLOW, res_row + r] += round_ms(tf[EF_RES_OVERFLOW, r] * 1000.0)
            ti[METRICS + RS_GAINED, res_row + r] += round_ms(tf[EF_RES_GAINED, r] * 1000.0)
            ti[METRICS + RS_SPENT, res_row + r] += round_ms(tf[EF_RES_SPENT, r] * 1000.0)
