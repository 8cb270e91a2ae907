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
    refresh_player,
    refresh_target,
    round_ms,
    run_triggered,
    schedule,
    sync_resource,
    update_charges,
)
from .heap import heap_pop
from .model import (
    AU_UPTIME_MS,
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
    HP_POS,
    HP_TIME,
    I_AURAS,
    I_CODE_START,
    I_FIGHT_MS,
    I_FIGHT_VARY_MS,
    I_PRECOMBAT_COUNT,
    I_PRECOMBAT_START,
    I_RESOURCES,
    I_ROTATION,
    I_SPELLS,
    I_TARGETS,
    IN_EXPIRE,
    IN_STACKS,
    IN_UP_SINCE,
    KEY_CAST,
    MAX_DAMAGE_EVENTS_PER_ITERATION,
    MAX_EVENTS_PER_ITERATION,
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
    N_TRUNCATED,
    NEVER,
    POLL_MS,
    ROT_COUNT,
    ROT_SPELL,
    ROT_START,
    RS_GAINED,
    RS_OVERFLOW,
    RS_SPENT,
    RSF_START,
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
def ready_at(m, st, s: int, now: int) -> int:
    """When spell ``s`` will be castable as far as cooldown and resources go (``now`` if now)."""
    t = now
    if m.i[SP_COOLDOWN_MS, s] > 0:
        update_charges(m, st, s, now)
        if st.ei[EI_CHARGES, s] == 0:
            t = max(t, st.ei[EI_RECHARGE_END, s])
    for r in range(m.ints[I_RESOURCES]):
        need = m.f[SPF_COST + r, s]
        if m.i[SP_FINISHER_RES, s] == r:
            need = max(need, m.f[SPF_FINISHER_MIN, s])
        if need <= 0.0:
            continue
        sync_resource(m, st, r, now)
        missing = need - st.ef[EF_RES_VALUE, r]
        if missing > 0.0:
            rate = st.ef[EF_RES_RATE, r]
            if rate <= 0.0:
                return NEVER
            wait = missing / rate
            whole = int(wait)
            t = max(t, now + whole + (1 if wait > whole else 0))
    return t


@jit
def condition_holds(m, st, e: int, now: int) -> bool:
    """Evaluate the compiled condition of rotation entry ``e``."""
    count = m.i[ROT_COUNT, e]
    if count == 0:
        return True
    stack = st.cond
    n_targets = m.ints[I_TARGETS]
    fight = st.n[N_FIGHT_MS]
    code = m.links
    sp = 0
    start = m.ints[I_CODE_START] + 2 * m.i[ROT_START, e]
    for k in range(start, start + 2 * count, 2):
        op = code[k]
        arg = code[k + 1]
        if op < 20:
            value = 0.0
            if op == OP_CONST:
                value = m.consts[arg]
            elif op == OP_TIME:
                value = now / 1000.0
            elif op == OP_FIGHT_REMAINS:
                value = (fight - now) / 1000.0
            elif op == OP_HEALTH_PCT:
                value = 100.0 * (fight - now) / fight
            elif op == OP_ACTIVE_ENEMIES:
                value = float(n_targets)
            elif op == OP_RESOURCE:
                sync_resource(m, st, arg, now)
                value = st.ef[EF_RES_VALUE, arg]
            elif op == OP_AURA_STACK:
                value = float(st.inst[IN_STACKS, arg * n_targets])
            elif op == OP_AURA_REMAINS:
                inst = arg * n_targets
                if st.inst[IN_STACKS, inst] > 0:
                    value = (min(st.inst[IN_EXPIRE, inst], fight) - now) / 1000.0
            elif op == OP_CHARGES:
                value = 1.0
                if m.i[SP_COOLDOWN_MS, arg] > 0:
                    update_charges(m, st, arg, now)
                    value = float(st.ei[EI_CHARGES, arg])
            elif op == OP_COOLDOWN_REMAINS and m.i[SP_COOLDOWN_MS, arg] > 0:
                update_charges(m, st, arg, now)
                if st.ei[EI_CHARGES, arg] == 0:
                    value = (st.ei[EI_RECHARGE_END, arg] - now) / 1000.0
            stack[sp] = value
            sp += 1
        elif op == OP_NOT:
            stack[sp - 1] = 1.0 if stack[sp - 1] == 0.0 else 0.0
        elif op == OP_IS_TRUE:
            stack[sp - 1] = 0.0 if stack[sp - 1] == 0.0 else 1.0
        else:
            b = stack[sp - 1]
            a = stack[sp - 2]
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
            stack[sp - 1] = 1.0 if result else 0.0
    return stack[0] != 0.0


@jit
def start_cast(m, st, s: int, now: int) -> None:
    """Begin casting spell ``s``: GCD, cast time or channel, or execute it if instant."""
    haste = st.stat[ST_HASTE]
    gcd_ready = now
    if not m.i[SP_OFF_GCD, s]:
        gcd = m.i[SP_GCD_MS, s]
        if m.i[SP_GCD_HASTED, s]:
            gcd = max(m.i[SP_GCD_MIN_MS, s], round_ms(gcd / haste))
        gcd_ready = now + gcd
        st.n[N_GCD_READY] = gcd_ready
    busy = now
    cast = round_ms(m.i[SP_CAST_MS, s] * st.ef[EF_CAST_MULT, s] / haste)
    channel = m.i[SP_CHANNEL_AURA, s]
    if channel >= 0:
        execute(m, st, s, np.int64(1), now)
        busy = st.inst[IN_EXPIRE, channel * m.ints[I_TARGETS]]
    elif cast > 0:
        st.n[N_CAST_SPELL] = s
        schedule(st, np.int64(KEY_CAST), now + cast)
        busy = now + cast
    else:
        execute(m, st, s, np.int64(1), now)
    st.n[N_BUSY_UNTIL] = busy
    st.n[N_DECISION] = max(gcd_ready, busy)


@jit
def decide(m, st, now: int) -> None:
    """The actor's decision at ``now``: cast the first usable spell of the priority list."""
    for _ in range(64):  # off-GCD spells can chain at one instant; each needs a cooldown
        wake = now + POLL_MS
        chosen = -1
        for e in range(m.ints[I_ROTATION]):
            s = m.i[ROT_SPELL, e]
            ready = ready_at(m, st, s, now)
            if ready > now:
                wake = min(wake, ready)
            elif condition_holds(m, st, e, now):
                chosen = s
                break
        if chosen < 0:
            st.n[N_DECISION] = wake
            return
        start_cast(m, st, chosen, now)
        run_triggered(m, st, now)
        if st.n[N_DECISION] > now:
            return
    st.n[N_DECISION] = now + POLL_MS


# --- iterations -------------------------------------------------------------------------


@jit
def reset(m, st, seed_lo: int, seed_hi: int, iteration: int) -> None:
    """Start iteration ``iteration`` of the job: fresh state, random keys, fight length."""
    st.n[:] = 0
    st.n[N_CAST_SPELL] = -1
    st.heap[HP_POS, :] = -1
    for stream in range(N_STREAMS):
        st.ei[EI_RNG_KEY, stream] = stream_key(seed_lo, seed_hi, iteration, stream)
        st.ei[EI_RNG_COUNTER, stream] = 0
    vary = m.ints[I_FIGHT_VARY_MS]
    offset = (draw_u32(st.ei[EI_RNG_KEY, STREAM_FIGHT], np.int64(0)) * (2 * vary + 1)) >> 32
    st.n[N_FIGHT_MS] = m.ints[I_FIGHT_MS] + offset - vary
    st.inst[IN_STACKS, :] = 0
    for s in range(m.ints[I_SPELLS]):
        st.ei[EI_CHARGES, s] = m.i[SP_CHARGES, s]
        st.ei[EI_RECHARGE_END, s] = 0
        st.ef[EF_CD_RATE, s] = 1.0
    for r in range(m.ints[I_RESOURCES]):
        st.ef[EF_RES_VALUE, r] = m.f[RSF_START, r]
        st.ei[EI_RES_LAST, r] = 0
        st.ef[EF_RES_OVERFLOW, r] = 0.0
        st.ef[EF_RES_GAINED, r] = 0.0
        st.ef[EF_RES_SPENT, r] = 0.0
        st.ef[EF_RES_RATE, r] = 0.0
    st.ei[EI_PROC_ATTEMPT, :] = 0
    st.ei[EI_PROC_LAST, :] = 0
    st.ei[EI_PROC_ICD, :] = 0
    refresh_player(m, st, np.int64(0))
    for t in range(m.ints[I_TARGETS]):
        refresh_target(m, st, t)
    first = m.ints[I_PRECOMBAT_START]
    for k in range(first, first + m.ints[I_PRECOMBAT_COUNT]):
        aura_apply(m, st, m.links[k], np.int64(0), np.int64(1), np.int64(0))


@jit
def handle_event(m, st, key: int, now: int) -> None:
    """Run the event ``key`` popped from the heap."""
    n_inst = m.ints[I_AURAS] * m.ints[I_TARGETS]
    if key == KEY_CAST:
        s = st.n[N_CAST_SPELL]
        st.n[N_CAST_SPELL] = -1
        execute(m, st, s, np.int64(1), now)
    elif key <= n_inst:
        aura_expire(m, st, key - 1, now)
    else:
        aura_tick_event(m, st, key - 1 - n_inst, now)
    run_triggered(m, st, now)


@jit
def run_iteration(m, st, seed_lo: int, seed_hi: int, iteration: int) -> None:
    """Simulate one fight; damage and fight length are left in ``st.n``."""
    reset(m, st, seed_lo, seed_hi, iteration)
    fight = st.n[N_FIGHT_MS]
    end = fight
    while True:
        decision = st.n[N_DECISION]
        next_event = st.heap[HP_TIME, 0] if st.n[N_HEAP_SIZE] > 0 else NEVER
        if decision < next_event:
            if decision >= fight:
                break
            decide(m, st, decision)
        else:
            if next_event >= fight:
                break
            key = heap_pop(st.heap, st.n)
            handle_event(m, st, key, next_event)
            # An idle actor reconsiders after anything happened.
            idle_from = max(st.n[N_GCD_READY], st.n[N_BUSY_UNTIL])
            if st.n[N_DECISION] > next_event and idle_from <= next_event:
                st.n[N_DECISION] = next_event
        st.n[N_EVENTS] += 1
        if (
            st.n[N_EVENTS] >= MAX_EVENTS_PER_ITERATION
            or st.n[N_DAMAGE_EVENTS] >= MAX_DAMAGE_EVENTS_PER_ITERATION
        ):
            st.n[N_TRUNCATED] = 1
            end = min(fight, max(decision, next_event))
            break
    # Close the books: uptime of auras still up, regeneration up to the end.
    n_targets = m.ints[I_TARGETS]
    aura_row = m.ints[I_SPELLS] + m.ints[I_AURAS]
    for inst in range(st.inst.shape[1]):
        if st.inst[IN_STACKS, inst] > 0:
            st.metrics[aura_row + inst // n_targets, AU_UPTIME_MS] += (
                end - st.inst[IN_UP_SINCE, inst]
            )
    for r in range(m.ints[I_RESOURCES]):
        sync_resource(m, st, r, end)


@jit
def run_block(
    m, st, seed_lo: int, seed_hi: int, first: int, values: np.ndarray, scale: int
) -> None:
    """Run iterations ``first .. first + len(values)``; write per-iteration values.

    A value is ``damage * scale // fight_ms`` (``scale`` = fixed-point units per DPS times
    1000 ms), computed exactly in int64. Metrics are summed into ``st.metrics``.
    """
    st.metrics[:, :] = 0
    misc = st.metrics.shape[0] - 1
    res_row = misc - m.ints[I_RESOURCES]
    for i in range(values.shape[0]):
        run_iteration(m, st, seed_lo, seed_hi, first + i)
        damage = st.n[N_DAMAGE]
        fight = st.n[N_FIGHT_MS]
        whole = damage // fight
        values[i] = whole * scale + (damage - whole * fight) * scale // fight
        st.metrics[misc, MS_EVENTS] += st.n[N_EVENTS]
        st.metrics[misc, MS_FIGHT_MS] += fight
        st.metrics[misc, MS_TRUNCATED] += st.n[N_TRUNCATED]
        st.metrics[misc, MS_DAMAGE_EVENTS] += st.n[N_DAMAGE_EVENTS]
        for r in range(m.ints[I_RESOURCES]):
            st.metrics[res_row + r, RS_OVERFLOW] += round_ms(st.ef[EF_RES_OVERFLOW, r] * 1000.0)
            st.metrics[res_row + r, RS_GAINED] += round_ms(st.ef[EF_RES_GAINED, r] * 1000.0)
            st.metrics[res_row + r, RS_SPENT] += round_ms(st.ef[EF_RES_SPENT, r] * 1000.0)
