"""Counter-based random numbers: a hash of (seed, global iteration, stream, counter).

Nothing is carried from one draw to the next but a counter, so iteration ``k`` of a job gets
the same numbers whatever chunk runs it. Each kind of roll has its own stream, so a change
that adds crit rolls does not shift the fight lengths or the proc rolls of another config
run with the same seed (common random numbers).

All arithmetic stays below 2**63 (32-bit values times multipliers below 2**31), so numba's
int64 and Python's unbounded ints give bit-identical results.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

from ._jit import jit

Int: TypeAlias = int | np.integer[Any]

MASK32 = 0xFFFFFFFF
TWO_POW_32 = 4294967296.0

STREAM_CRIT = 0
STREAM_PROC = 1
STREAM_VARIANCE = 2
STREAM_FIGHT = 3
N_STREAMS = 4


@jit
def mix32(x: Int) -> Int:
    """A bijective 32-bit integer hash (xorshift-multiply; both multipliers below 2**31)."""
    x = x & MASK32
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & MASK32
    x ^= x >> 15
    x = (x * 0x735A2D97) & MASK32
    x ^= x >> 15
    return x


@jit
def stream_key(seed_lo: Int, seed_hi: Int, iteration: Int, stream: Int) -> Int:
    """The 32-bit key of one stream of one global iteration of a job."""
    h = mix32(seed_lo ^ 0x3C6EF372)
    h = mix32(h ^ seed_hi)
    h = mix32(h ^ (iteration & MASK32))
    h = mix32(h ^ ((iteration >> 32) & MASK32))
    return mix32(h ^ ((stream * 0x2545F491 + 0x61C88647) & MASK32))


@jit
def draw_u32(key: Int, counter: Int) -> Int:
    """The ``counter``-th 32-bit draw of the stream with ``key``."""
    return mix32(mix32((counter ^ key) & MASK32) ^ ((key * 0x5BD1E995) & MASK32))


@jit
def draw_unit(key: Int, counter: Int) -> float:
    """The ``counter``-th draw as a float in [0, 1)."""
    return draw_u32(key, counter) / TWO_POW_32
