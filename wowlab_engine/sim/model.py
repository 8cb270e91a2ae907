"""Structure-of-arrays layouts: the compiled config (``Model``) and the mutable ``State``.

The compiled config is three tables (ints ``mi``, floats ``mf``, masks ``mk``). A run copies
them into two tables, ints ``ti`` and floats ``tf``, whose first rows are the model and whose
later rows are the mutable state; kernel functions take just ``(ti, tf)``. Each field of a
spell, aura, effect, proc or resource is one row, indexed by the entity:
``ti[SP_COOLDOWN_MS, spell]``, ``tf[SPF_COEFF, spell]``; rows ``HEAD`` and ``S_HEAD`` hold
scalars: ``ti[HEAD, I_TARGETS]``, ``ti[S_HEAD, N_NOW]``. (Arrays in tuples cost a reference
count update at every access, and every array argument costs nine words at every call: two
plain arrays are the cheapest way to hand the kernel its data.)
Abilities (rows of the per-ability metrics) are the spells followed by the auras, so a
DoT's ticks are reported under the aura's name.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeAlias

import numpy as np

from .rng import N_STREAMS

#: Types of kernel arguments: the tables, and integers (Python or numpy).
Array: TypeAlias = np.ndarray
Int: TypeAlias = int | np.integer[Any]

#: Row of scalars in every table.
HEAD = 0

# --- mi[HEAD]: counts, fight, list offsets -------------------------------------------------
I_TARGETS = 0
I_FIGHT_MS = 1
I_FIGHT_VARY_MS = 2
I_SPELLS = 3
I_AURAS = 4
I_PROCS = 5
I_RESOURCES = 6
I_ROTATION = 7
I_EFFECTS = 8
I_COND_STACK = 9
I_WORK_CAP = 10
I_PRECOMBAT_START = 11  # into mi[LINKS]
I_PRECOMBAT_COUNT = 12
I_CODE_START = 13  # condition bytecode: (opcode, argument) pairs in mi[LINKS]
I_MISC_ROW = 14  # metric row of the run-wide counters (see metric_rows)
I_LONG = 15  # first row of the long region of the state (timelines, sample sequence)
I_TL_STEP_MS = 16  # DPS timeline: bucket width and count
I_TL_POINTS = 17
I_ST_STEP_MS = 18  # resource and aura timelines: bucket width (a multiple) and count
I_ST_POINTS = 19
I_SEQ_CAP = 20  # most casts recorded in the sample sequence (iteration 0)
N_INTS = 21

# --- mf[HEAD]: actor ---------------------------------------------------------------------
F_PRIMARY = 0
F_CRIT = 1  # fractions, not percent
F_HASTE = 2
F_MASTERY = 3
F_VERSATILITY = 4
F_CRIT_MULTIPLIER = 5
F_TAKEN = 6  # 7 schools: damage multiplier (damage taken, armor)
N_FLOATS = 13

MAX_RESOURCES = 4

# --- mi rows (int64 fields by entity) ----------------------------------------------------
SP_CAST_MS = 1
SP_GCD_MS = 2
SP_GCD_HASTED = 3
SP_GCD_MIN_MS = 4
SP_OFF_GCD = 5
SP_COOLDOWN_MS = 6
SP_COOLDOWN_HASTED = 7
SP_CHARGES = 8
SP_FINISHER_RES = 9  # -1: not a finisher
SP_SCHOOL = 10
SP_CAN_CRIT = 11
SP_MASTERY = 12
SP_TARGETS = 13
SP_AURA_PRIMARY = 14
SP_CHANNEL_AURA = 15  # -1: not channelled
SP_APPLY_START = 16  # (aura, stacks) pairs in mi[LINKS]
SP_APPLY_COUNT = 17
SP_CONSUME_START = 18
SP_CONSUME_COUNT = 19
SP_TRIGGER_START = 20
SP_TRIGGER_COUNT = 21
AU_ON_TARGET = 22
AU_DURATION_MS = 23  # 0: permanent
AU_CHANNEL_TICKS = 24  # >0: channel aura; duration = ticks x hasted period
AU_MAX_STACKS = 25
AU_PANDEMIC = 26
AU_PERIOD_MS = 27  # 0: no ticks
AU_PERIOD_HASTED = 28
AU_PARTIAL = 29
AU_SCHOOL = 30
AU_CAN_CRIT = 31
AU_MASTERY = 32
AU_EFFECT_KINDS = 33  # bit mask: 1 << effect type, for each type among its effects
EF_AURA = 34
EF_TYPE = 35
EF_STAT = 36
EF_SCHOOL = 37  # -1: any
EF_RESOURCE = 38
PR_ON = 39
PR_RPPM_HASTE = 40
PR_BLP = 41
PR_ICD_MS = 42
PR_AURA = 43  # -1: none
PR_STACKS = 44
PR_SPELL = 45  # -1: none
PR_RESET = 46  # -1: none
RES_HASTED = 47
ROT_SPELL = 48
ROT_START = 49  # index of the entry's first (opcode, argument) pair
ROT_COUNT = 50
LINKS = 51  # lists: applied auras, consumed auras, triggers, precombat, bytecode
N_MI_ROWS = 52

# --- mf rows (float64 fields by entity) --------------------------------------------------
SPF_FINISHER_MIN = 1
SPF_COEFF = 2  # 0: no direct damage
SPF_VARIANCE = 3
SPF_COST = 4  # + resource
SPF_GAIN = SPF_COST + MAX_RESOURCES  # + resource
AUF_COEFF = SPF_GAIN + MAX_RESOURCES
AUF_VARIANCE = AUF_COEFF + 1
EFF_VALUE = AUF_VARIANCE + 1  # per stack
PRF_CHANCE = EFF_VALUE + 1
PRF_RPPM = PRF_CHANCE + 1  # 0: flat chance
PRF_GAIN = PRF_RPPM + 1  # + resource
RSF_MAX = PRF_GAIN + MAX_RESOURCES
RSF_START = RSF_MAX + 1
RSF_REGEN = RSF_START + 1  # per ms
CONSTS = RSF_REGEN + 1  # constants of the conditions
N_MF_ROWS = CONSTS + 1

# Stats in effect rows.
STAT_PRIMARY = 0
STAT_CRIT = 1
STAT_HASTE = 2
STAT_MASTERY = 3
STAT_VERSATILITY = 4

# Effect types.
EFFECT_STAT_ADD = 0
EFFECT_STAT_PCT = 1
EFFECT_DAMAGE_PCT = 2
EFFECT_HASTE_PCT = 3
EFFECT_COOLDOWN_RATE_PCT = 4
EFFECT_REGEN_PCT = 5
EFFECT_CAST_TIME_PCT = 6
ALL_KINDS = (1 << 7) - 1

# Proc triggers.
ON_CAST = 0
ON_HIT = 1
ON_CRIT = 2
ON_TICK = 3


class Model(NamedTuple):
    """The compiled config (see :mod:`wowlab_engine.compiler`); pass as ``*model``."""

    mi: np.ndarray  # [N_MI_ROWS, width] int64
    mf: np.ndarray  # [N_MF_ROWS, width] float64
    mk: np.ndarray  # [effects + procs, abilities] int8: effect / proc applies to ability


# --- state rows of the int table (after the model's rows) ----------------------------------
S_HEAD = N_MI_ROWS  # int64 scalars:
N_NOW = 0
N_FIGHT_MS = 1
N_HEAP_SIZE = 2
N_SEQ = 3
N_DECISION = 4  # time of the actor's next decision
N_CAST_SPELL = 5  # -1: not casting
N_GCD_READY = 6
N_BUSY_UNTIL = 7
N_EVENTS = 8
N_DAMAGE = 9
N_DAMAGE_EVENTS = 10
N_WORK = 11  # size of the triggered-spell work stack
N_TRUNCATED = 12
N_NEXT_SAMPLE = 13  # time of the next resource sample (a resource-timeline bucket start)
N_SAMPLE = 14  # its bucket
N_SEQ_ON = 15  # 1 while the sample sequence is recorded (iteration 0)
N_SEQ_LEN = 16
N_SCALARS = 17
HP_KEY = S_HEAD + 1  # event heap, by slot
HP_TIME = S_HEAD + 2
HP_SEQ = S_HEAD + 3
HP_POS = S_HEAD + 4  # by key: heap slot or -1
IN_STACKS = S_HEAD + 5  # aura instances (aura * targets + slot)
IN_EXPIRE = S_HEAD + 6
IN_UP_SINCE = S_HEAD + 7
IN_LAST_TICK = S_HEAD + 8
IN_PERIOD = S_HEAD + 9
EI_CHARGES = S_HEAD + 10  # spells
EI_RECHARGE_END = S_HEAD + 11
EI_RES_LAST = S_HEAD + 12  # resources: time of the last regeneration update
EI_PROC_ATTEMPT = S_HEAD + 13  # procs
EI_PROC_LAST = S_HEAD + 14
EI_PROC_ICD = S_HEAD + 15
EI_RNG_KEY = S_HEAD + 16  # random streams
EI_RNG_COUNTER = S_HEAD + 17  # + stream: draws so far, by sub-stream (ability or proc)
WORK = EI_RNG_COUNTER + N_STREAMS  # triggered spells waiting to execute
METRICS = WORK + 1  # + metric column; indexed by metric row (see metric_rows)
N_METRIC_COLUMNS = 43
MASK = METRICS + N_METRIC_COLUMNS  # + effect, then + effects + proc: applies to ability (0/1)
# After the masks, the long region (first row ``mi[HEAD, I_LONG]``): one row per timeline
# bucket (or sequence entry), one column per series; see the L_ columns.

# --- state rows of the float table (after the model's rows) --------------------------------
S_STAT = N_MF_ROWS  # float64 scalars:
ST_PRIMARY = 0
ST_CRIT = 1  # chance
ST_HASTE = 2  # multiplier (1.2 = 20 % haste)
ST_MASTERY = 3  # damage multiplier of mastery abilities
ST_VERSATILITY = 4  # damage multiplier
N_STAT = 5
EF_CD_RATE = S_STAT + 1  # spells
EF_CAST_MULT = S_STAT + 2
EF_RES_VALUE = S_STAT + 3  # resources
EF_RES_RATE = S_STAT + 4  # per ms
EF_RES_OVERFLOW = S_STAT + 5
EF_RES_GAINED = S_STAT + 6
EF_RES_SPENT = S_STAT + 7
COND = S_STAT + 8  # condition evaluation stack
MULT = S_STAT + 9  # damage multiplier by ability: player, then one row per target

# --- metric columns (rows: abilities, auras, procs, resources, then one misc row) -----------
AB_DAMAGE = 0
AB_DIRECT_DAMAGE = 1
AB_EXECUTES = 2
AB_HITS = 3
AB_CRITS = 4
AB_TICKS = 5
AB_TICK_DAMAGE = 6
AB_TICK_CRITS = 7
AB_CRIT_DAMAGE = 8  # direct damage of crits
AB_TICK_CRIT_DAMAGE = 9
AB_HIT_MIN = 10  # smallest and largest direct hit (a block's min columns start at NO_MIN)
AB_HIT_MAX = 11
AB_TICK_MIN = 12
AB_TICK_MAX = 13
AB_EXECUTE_MS = 14  # time the actor was busy with its casts (GCD, cast or channel)
MIN_COLUMNS = (AB_HIT_MIN, AB_TICK_MIN)
MAX_COLUMNS = (AB_HIT_MAX, AB_TICK_MAX)
NO_MIN = 1 << 62
TARGET_DAMAGE = 15  # + target: damage of the ability on that target
GAINS = TARGET_DAMAGE + 20  # + 2 x resource (+ 1: overflow), by source: spells, procs, regen
AU_UPTIME_MS = 0
AU_TRIGGERS = 1
AU_REFRESHES = 2
PROC_COUNT = 0
RS_OVERFLOW = 0  # milli-units
RS_GAINED = 1
RS_SPENT = 2
MS_EVENTS = 0
MS_FIGHT_MS = 1
MS_TRUNCATED = 2
MS_CLIPPED = 3
MS_DAMAGE_EVENTS = 4
MS_CASTS = 5  # casts started from the rotation (APM)

# --- long-region columns ---------------------------------------------------------------------
L_DAMAGE = 0  # damage in DPS-timeline bucket
L_FIGHT_MS = 1  # fight time in DPS-timeline bucket (iterations x ms)
L_SAMPLES = 2  # iterations sampled at resource-timeline bucket start
L_SEQUENCE = 3  # sample sequence entry: t_ms + spell << 22 + first resource << 29 + 1 << 60
L_RESOURCE = 4  # + resource: value at bucket start (milli-units)
L_AURA = L_RESOURCE + MAX_RESOURCES  # + aura: uptime in resource-timeline bucket (ms)
SEQ_SPELL_SHIFT = 22
SEQ_RESOURCE_SHIFT = 29
SEQ_RESOURCE_MAX = (1 << 30) - 1
SEQ_PRESENT = 1 << 60  # so that no entry is 0 (absent)

#: A single hit is clipped to this (and counted), so sums cannot overflow int64.
MAX_HIT = 1 << 30
#: An iteration stops (and is counted as truncated) after this many events ...
MAX_EVENTS_PER_ITERATION = 1 << 21
#: ... or this many damage events.
MAX_DAMAGE_EVENTS_PER_ITERATION = 1 << 20
#: When nothing is usable, the actor looks again after at most this long.
POLL_MS = 100
#: Expiry time of permanent auras (later than any fight).
NEVER = 1 << 50
#: Heap key of the actor's cast in progress; aura expiries (1 + instance) and ticks follow.
KEY_CAST = 0


class State(NamedTuple):
    """The tables a run works on: the model's rows, then the mutable state's rows.

    Every run gets its own copy, so the kernel reads and writes two arrays only.
    """

    ti: Array  # [MASK + effects + procs + long rows, width] int64
    tf: Array  # [MULT + 1 + targets, width] float64


def metric_rows(spells: int, auras: int, procs: int, resources: int) -> tuple[int, ...]:
    """First metric row of the abilities, auras, procs, resources, and the misc row."""
    aura_row = spells + auras
    proc_row = aura_row + auras
    res_row = proc_row + procs
    return 0, aura_row, proc_row, res_row, res_row + resources


def new_state(model: Model) -> State:
    """The tables of one run: a copy of the model, and zeroed state (set per iteration)."""
    head = model.mi[HEAD]
    n_targets, n_auras = int(head[I_TARGETS]), int(head[I_AURAS])
    n_inst = n_auras * n_targets
    n_ab = int(head[I_SPELLS]) + n_auras
    width = max(
        model.mi.shape[1],
        N_STREAMS,
        N_SCALARS,
        N_STAT,
        1 + 2 * n_inst,
        int(head[I_WORK_CAP]),
        int(head[I_COND_STACK]),
        int(head[I_MISC_ROW]) + 1,
        n_ab,
    )
    n_masks = model.mk.shape[0]
    long_rows = max(int(head[I_TL_POINTS]), int(head[I_ST_POINTS]), int(head[I_SEQ_CAP]))
    width = max(width, L_AURA + n_auras)
    ti = np.zeros((MASK + n_masks + long_rows, width), np.int64)
    ti[:N_MI_ROWS, : model.mi.shape[1]] = model.mi
    ti[MASK : MASK + n_masks, : model.mk.shape[1]] = model.mk
    tf = np.zeros((MULT + 1 + n_targets, width), np.float64)
    tf[:N_MF_ROWS, : model.mf.shape[1]] = model.mf
    return State(ti=ti, tf=tf)
