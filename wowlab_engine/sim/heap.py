"""An indexed binary min-heap of events, ordered by (time, sequence number).

Every pending event has a key (cast end, one expiry and one tick per aura instance), and a
key is in the heap at most once: rescheduling moves it, cancelling removes it. So the heap
never holds stale events and its size is bounded by the number of keys. The sequence number
(assigned when an event is scheduled) breaks ties in time deterministically.

The heap lives in rows of the state's int table ``si``: ``HP_KEY``, ``HP_TIME``, ``HP_SEQ``
by slot, ``HP_POS`` by key (slot or -1); its size is ``si[HEAD, N_HEAP_SIZE]``.
"""

from __future__ import annotations

from ._jit import jit
from .model import HEAD, HP_KEY, HP_POS, HP_SEQ, HP_TIME, N_HEAP_SIZE, Array, Int


@jit
def _less(si: Array, i: Int, j: Int) -> bool:
    ti = si[HP_TIME, i]
    tj = si[HP_TIME, j]
    return bool(ti < tj or (ti == tj and si[HP_SEQ, i] < si[HP_SEQ, j]))


@jit
def _swap(si: Array, i: Int, j: Int) -> None:
    for row in range(HP_KEY, HP_SEQ + 1):  # key, time, seq rows
        x = si[row, i]
        si[row, i] = si[row, j]
        si[row, j] = x
    si[HP_POS, si[HP_KEY, i]] = i
    si[HP_POS, si[HP_KEY, j]] = j


@jit
def _sift(si: Array, i: Int, size: Int) -> None:
    while i > 0:
        parent = (i - 1) >> 1
        if not _less(si, i, parent):
            break
        _swap(si, i, parent)
        i = parent
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and _less(si, left + 1, left):
            child = left + 1
        if not _less(si, child, i):
            break
        _swap(si, i, child)
        i = child


@jit
def heap_schedule(si: Array, key: Int, time: Int, seq: Int) -> None:
    """Schedule ``key`` at ``time`` (moving it if it is already scheduled)."""
    i = si[HP_POS, key]
    if i < 0:
        i = si[HEAD, N_HEAP_SIZE]
        si[HEAD, N_HEAP_SIZE] = i + 1
        si[HP_KEY, i] = key
        si[HP_POS, key] = i
    si[HP_TIME, i] = time
    si[HP_SEQ, i] = seq
    _sift(si, i, si[HEAD, N_HEAP_SIZE])


@jit
def heap_cancel(si: Array, key: Int) -> None:
    """Remove ``key`` if it is scheduled."""
    i = si[HP_POS, key]
    if i < 0:
        return
    last = si[HEAD, N_HEAP_SIZE] - 1
    if i != last:
        _swap(si, i, last)
    si[HEAD, N_HEAP_SIZE] = last
    si[HP_POS, key] = -1
    if i < last:
        _sift(si, i, last)


@jit
def heap_pop(si: Array) -> int:
    """Remove and return the key of the earliest event (the heap must not be empty)."""
    key = si[HP_KEY, 0]
    heap_cancel(si, key)
    return int(key)
