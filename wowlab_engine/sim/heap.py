"""An indexed binary min-heap of events, ordered by (time, sequence number).

Every pending event has a key (cast end, one expiry and one tick per aura instance), and a
key is in the heap at most once: rescheduling moves it, cancelling removes it. So the heap
never holds stale events and its size is bounded by the number of keys. The sequence number
(assigned when an event is scheduled) breaks ties in time deterministically.

The heap lives in rows of the int table ``ti``: ``HP_KEY``, ``HP_TIME``, ``HP_SEQ``
by slot, ``HP_POS`` by key (slot or -1); its size is ``ti[S_HEAD, N_HEAP_SIZE]``.
"""

from __future__ import annotations

from ._jit import jit
from .model import HP_KEY, HP_POS, HP_SEQ, HP_TIME, N_HEAP_SIZE, S_HEAD, Array, Int


@jit
def _less(ti: Array, i: Int, j: Int) -> bool:
    time_i = ti[HP_TIME, i]
    time_j = ti[HP_TIME, j]
    return bool(time_i < time_j or (time_i == time_j and ti[HP_SEQ, i] < ti[HP_SEQ, j]))


@jit
def _swap(ti: Array, i: Int, j: Int) -> None:
    for row in range(HP_KEY, HP_SEQ + 1):  # key, time, seq rows
        x = ti[row, i]
        ti[row, i] = ti[row, j]
        ti[row, j] = x
    ti[HP_POS, ti[HP_KEY, i]] = i
    ti[HP_POS, ti[HP_KEY, j]] = j


@jit
def _sift(ti: Array, i: Int, size: Int) -> None:
    while i > 0:
        parent = (i - 1) >> 1
        if not _less(ti, i, parent):
            break
        _swap(ti, i, parent)
        i = parent
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and _less(ti, left + 1, left):
            child = left + 1
        if not _less(ti, child, i):
            break
        _swap(ti, i, child)
        i = child


@jit
def heap_schedule(ti: Array, key: Int, time: Int, seq: Int) -> None:
    """Schedule ``key`` at ``time`` (moving it if it is already scheduled)."""
    i = ti[HP_POS, key]
    if i < 0:
        i = ti[S_HEAD, N_HEAP_SIZE]
        ti[S_HEAD, N_HEAP_SIZE] = i + 1
        ti[HP_KEY, i] = key
        ti[HP_POS, key] = i
    ti[HP_TIME, i] = time
    ti[HP_SEQ, i] = seq
    _sift(ti, i, ti[S_HEAD, N_HEAP_SIZE])


@jit
def heap_cancel(ti: Array, key: Int) -> None:
    """Remove ``key`` if it is scheduled."""
    i = ti[HP_POS, key]
    if i < 0:
        return
    last = ti[S_HEAD, N_HEAP_SIZE] - 1
    if i != last:
        _swap(ti, i, last)
    ti[S_HEAD, N_HEAP_SIZE] = last
    ti[HP_POS, key] = -1
    if i < last:
        _sift(ti, i, last)


@jit
def heap_pop(ti: Array) -> int:
    """Remove and return the key of the earliest event (the heap must not be empty)."""
    key = ti[HP_KEY, 0]
    heap_cancel(ti, key)
    return int(key)
