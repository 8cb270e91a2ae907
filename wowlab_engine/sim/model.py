"""Structure-of-arrays layouts: the compiled config (``Model``) and the mutable ``State``.

Each field of a spell, aura, effect, proc or resource is one row of a 2-D table, indexed by
the entity: ``m.i[SP_COOLDOWN_MS, spell]``, ``m.f[SPF_COEFF, spell]``. Few, large arrays
keep numba's compile time low (it grows with the number of arrays passed around).
Abilities (rows of the per-ability metrics) are the spells followed by the auras, so a
DoT's ticks are reported under the aura's name.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .rng import N_STREAMS

# --- Model.ints: counts and fight -------------------------------------------------------
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
I_PRECOMBAT_START = 11  # into Model.links
I_PRECOMBAT_COUNT = 12
I_CODE_START = 13  # condition bytecode: (opcode, argument) pairs in Model.links
N_INTS = 14

# --- Model.floats: actor --------------------------------------------------------------
F_PRIMARY = 0
F_CRIT = 1  # fractions, not percent
F_HASTE = 2
F_MASTERY = 3
F_VERSATILITY = 4
F_CRIT_MULTIPLIER = 5
F_TAKEN = 6  # 7 schools: damage multiplier (damage taken, armor)
N_FLOATS = 13

MAX_RESOURCES = 4

# --- Model.i rows (int64 fields) ---------------------------------------------------------
SP_CAST_MS = 0
SP_GCD_MS = 1
SP_GCD_HASTED = 2
SP_GCD_MIN_MS = 3
SP_OFF_GCD = 4
SP_COOLDOWN_MS = 5
SP_COOLDOWN_HASTED = 6
SP_CHARGES = 7
SP_FINISHER_RES = 8  # -1: not a finisher
SP_SCHOOL = 9
SP_CAN_CRIT = 10
SP_MASTERY = 11
SP_TARGETS = 12
SP_AURA_PRIMARY = 13
SP_CHANNEL_AURA = 14  # -1: not channelled
SP_APPLY_START = 15  # (aura, stacks) pairs in Model.links
SP_APPLY_COUNT = 16
SP_CONSUME_START = 17
SP_CONSUME_COUNT = 18
SP_TRIGGER_START = 19
SP_TRIGGER_COUNT = 20
AU_ON_TARGET = 21
AU_DURATION_MS = 22  # 0: permanent
AU_CHANNEL_TICKS = 23  # >0: channel aura; duration = ticks x hasted period
AU_MAX_STACKS = 24
AU_PANDEMIC = 25
AU_PERIOD_MS = 26  # 0: no ticks
AU_PERIOD_HASTED = 27
AU_PARTIAL = 28
AU_SCHOOL = 29
AU_CAN_CRIT = 30
AU_MASTERY = 31
AU_HAS_EFFECTS = 32
EF_AURA = 33
EF_TYPE = 34
EF_STAT = 35
EF_SCHOOL = 36  # -1: any
EF_RESOURCE = 37
PR_ON = 38
PR_RPPM_HASTE = 39
PR_BLP = 40
PR_ICD_MS = 41
PR_AURA = 42  # -1: none
PR_STACKS = 43
PR_SPELL = 44  # -1: none
PR_RESET = 45  # -1: none
RES_HASTED = 46
ROT_SPELL = 47
ROT_START = 48  # index of the entry's first (opcode, argument) pair
ROT_COUNT = 49
N_I_ROWS = 50

# --- Model.f rows (float64 fields) -------------------------------------------------------
SPF_FINISHER_MIN = 0
SPF_COEFF = 1  # 0: no direct damage
SPF_VARIANCE = 2
SPF_COST = 3  # + resource
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
N_F_ROWS = RSF_REGEN + 1

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

# Proc triggers.
ON_CAST = 0
ON_HIT = 1
ON_CRIT = 2
ON_TICK = 3


class Model(NamedTuple):
    """The compiled config (see :mod:`wowlab_engine.compiler`)."""

    ints: np.ndarray  # [N_INTS] int64
    floats: np.ndarray  # [N_FLOATS] float64
    i: np.ndarray  # [N_I_ROWS, width] int64
    f: np.ndarray  # [N_F_ROWS, width] float64
    mask: np.ndarray  # [effects + procs, abilities] int8: effect / proc applies to ability
    links: np.ndarray  # int64 lists: applied auras, consumed auras, triggers, precombat, code
    consts: np.ndarray  # float64 constants of the conditions


# --- State.n (int64 scalars) -------------------------------------------------------------
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
N_SCALARS = 13

# --- State.stat (float64) ----------------------------------------------------------------
ST_PRIMARY = 0
ST_CRIT = 1  # chance
ST_HASTE = 2  # multiplier (1.2 = 20 % haste)
ST_MASTERY = 3  # damage multiplier of mastery abilities
ST_VERSATILITY = 4  # damage multiplier
N_STAT = 5

# --- State.heap rows ---------------------------------------------------------------------
HP_KEY = 0  # by heap slot
HP_TIME = 1
HP_SEQ = 2
HP_POS = 3  # by key: heap slot or -1

# --- State.inst rows (aura instances: aura * targets + slot) -----------------------------
IN_STACKS = 0
IN_EXPIRE = 1
IN_UP_SINCE = 2
IN_LAST_TICK = 3
IN_PERIOD = 4
N_IN = 5

# --- State.ei rows (int64 per entity) ------------------------------------------------------
EI_CHARGES = 0  # spells
EI_RECHARGE_END = 1
EI_RES_LAST = 2  # resources: time of the last regeneration update
EI_PROC_ATTEMPT = 3  # procs
EI_PROC_LAST = 4
EI_PROC_ICD = 5
EI_RNG_KEY = 6  # streams
EI_RNG_COUNTER = 7
N_EI = 8

# --- State.ef rows (float64 per entity) ----------------------------------------------------
EF_CD_RATE = 0  # spells
EF_CAST_MULT = 1
EF_RES_VALUE = 2  # resources
EF_RES_RATE = 3  # per ms
EF_RES_OVERFLOW = 4
EF_RES_GAINED = 5
EF_RES_SPENT = 6
N_EF = 7

# --- State.metrics: one row per ability, then aura, proc, resource, then one misc row ------
AB_DAMAGE = 0
AB_DIRECT_DAMAGE = 1
AB_EXECUTES = 2
AB_HITS = 3
AB_CRITS = 4
AB_TICKS = 5
AB_TICK_DAMAGE = 6
AB_TICK_CRITS = 7
N_AB = 8
AU_UPTIME_MS = 0
AU_TRIGGERS = 1
AU_REFRESHES = 2
N_AU = 3
PROC_COUNT = 0
RS_OVERFLOW = 0  # milli-units
RS_GAINED = 1
RS_SPENT = 2
N_RS = 3
MS_EVENTS = 0
MS_FIGHT_MS = 1
MS_TRUNCATED = 2
MS_CLIPPED = 3
MS_DAMAGE_EVENTS = 4
N_MS = 5
N_METRIC_COLUMNS = 8

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
#: Heap key of the actor's cast in progress; aura expiries and ticks follow.
KEY_CAST = 0


class State(NamedTuple):
    """Mutable per-run arrays, reset for every iteration (metrics: for every block)."""

    n: np.ndarray  # [N_SCALARS] int64
    stat: np.ndarray  # [N_STAT] float64
    heap: np.ndarray  # [4, keys] int64
    inst: np.ndarray  # [N_IN, auras * targets] int64
    ei: np.ndarray  # [N_EI, width] int64
    ef: np.ndarray  # [N_EF, width] float64
    mult: np.ndarray  # [1 + targets, abilities]: player damage multiplier, then per target
    work: np.ndarray  # triggered spells waiting to execute
    cond: np.ndarray  # condition evaluation stack
    metrics: np.ndarray  # [rows, N_METRIC_COLUMNS] int64, summed over a block


def metric_rows(model: Model) -> tuple[int, int, int, int, int]:
    """First metric row of the abilities, auras, procs, resources and the misc row."""
    ints = model.ints
    n_ab = int(ints[I_SPELLS] + ints[I_AURAS])
    aura_row = n_ab
    proc_row = aura_row + int(ints[I_AURAS])
    res_row = proc_row + int(ints[I_PROCS])
    misc_row = res_row + int(ints[I_RESOURCES])
    return 0, aura_row, proc_row, res_row, misc_row


def new_state(model: Model) -> State:
    """Allocate the state arrays for ``model`` (values are set per iteration)."""
    ints = model.ints
    n_targets, n_auras = int(ints[I_TARGETS]), int(ints[I_AURAS])
    n_inst = n_auras * n_targets
    n_ab = int(ints[I_SPELLS]) + n_auras
    width = max(model.i.shape[1], N_STREAMS)
    misc_row = metric_rows(model)[4]
    return State(
        n=np.zeros(N_SCALARS, np.int64),
        stat=np.zeros(N_STAT, np.float64),
        heap=np.zeros((4, 1 + 2 * n_inst), np.int64),
        inst=np.zeros((N_IN, n_inst), np.int64),
        ei=np.zeros((N_EI, width), np.int64),
        ef=np.zeros((N_EF, width), np.float64),
        mult=np.ones((1 + n_targets, n_ab), np.float64),
        work=np.zeros(int(ints[I_WORK_CAP]), np.int64),
        cond=np.zeros(max(1, int(ints[I_COND_STACK])), np.float64),
        metrics=np.zeros((misc_row + 1, N_METRIC_COLUMNS), np.int64),
    )
