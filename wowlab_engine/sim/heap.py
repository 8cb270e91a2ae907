"""An indexed binary min-heap of events, ordered by (time, sequence number).

Every pending event has a key (cast end, one expiry and one tick per aura instance), and a
key is in the heap at most once: rescheduling moves it, cancelling removes it. So the heap
never holds stale events and its size is bounded by the number of keys. The sequence number
(assigned when an event is scheduled) breaks ties in time deterministically.

``heap`` rows: ``HP_KEY``, ``HP_TIME``, ``HP_SEQ`` by slot, ``HP_POS`` by key (slot or -1);
the size is ``n[N_HEAP_SIZE]``.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .model import HP_KEY, HP_POS, HP_SEQ, HP_TIME, N_HEAP_SIZE


@jit
def _less(heap: np.ndarray, i: int, j: int) -> bool:
    ti = heap[HP_TIME, i]
    tj = heap[HP_TIME, j]
    return ti < tj or (ti == tj and heap[HP_SEQ, i] < heap[HP_SEQ, j])


@jit
def _swap(heap: np.ndarray, i: int, j: int) -> None:
    for row in range(3):
        x = heap[row, i]
        heap[row, i] = heap[row, j]
        heap[row, j] = x
    heap[HP_POS, heap[HP_KEY, i]] = i
    heap[HP_POS, heap[HP_KEY, j]] = j


@jit
def _sift(heap: np.ndarray, i: int, size: int) -> None:
    while i > 0:
        parent = (i - 1) >> 1
        if not _less(heap, i, parent):
            break
        _swap(heap, i, parent)
        i = parent
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and _less(heap, left + 1, left):
            child = left + 1
        if not _less(heap, child, i):
            break
        _swap(heap, i, child)
        i = child


@jit
def heap_schedule(heap: np.ndarray, n: np.ndarray, key: int, time: int, seq: int) -> None:
    """Schedule ``key`` at ``time`` (moving it if it is already scheduled)."""
    i = heap[HP_POS, key]
    if i < 0:
        i = n[N_HEAP_SIZE]
        n[N_HEAP_SIZE] = i + 1
        heap[HP_KEY, i] = key
        heap[HP_POS, key] = i
    heap[HP_TIME, i] = time
    heap[HP_SEQ, i] = seq
    _sift(heap, i, n[N_HEAP_SIZE])


@jit
def heap_cancel(heap: np.ndarray, n: np.ndarray, key: int) -> None:
    """Remove ``key`` if it is scheduled."""
    i = heap[HP_POS, key]
    if i < 0:
        return
    last = n[N_HEAP_SIZE] - 1
    if i != last:
        _swap(heap, i, last)
    n[N_HEAP_SIZE] = last
    heap[HP_POS, key] = -1
    if i < last:
        _sift(heap, i, last)


@jit
def heap_pop(heap: np.ndarray, n: np.ndarray) -> int:
    """Remove and return the key of the earliest event (the heap must not be empty)."""
    key = heap[HP_KEY, 0]
    heap_cancel(heap, n, key)
    return int(key)
