"""A small thread pool for block-wise work of the FFT path and the map scan.

The FFT path runs its transforms (``scipy.fft``, which releases the GIL) and its Numba
copies (``nogil``) on blocks of planes or columns, several blocks at once on a pool of
Python threads. Keeping the whole path on one pool avoids handing the cores back and
forth between the pool and Numba's own parallel regions: after a parallel region,
Numba's OpenMP threads keep spinning for a while and would compete with the pool on a
small machine (measured: ~3 ms of a 12 ms 128^3 convolution on 2 cores).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["BLOCK_BYTES", "run_blocks", "thread_count", "usable_cpus"]

#: Bytes of work per block: small enough that a block's planes or columns stay in a
#: core's cache between the passes made on them.
BLOCK_BYTES = 1 << 20

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()
_PREFIX = "dosimetry-blocks"


def _forget_pools() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _POOL_LOCK
    _POOLS.clear()
    _POOL_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, which
    follows container cpusets; else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def thread_count(workers: int | None) -> int:
    """Threads for ``workers`` with :mod:`scipy.fft`'s meaning for negative values
    (``cores + 1 + workers``); ``None``: every usable core (:func:`usable_cpus`).

    >>> thread_count(3), thread_count(0) >= 1
    (3, True)
    """
    cpus = usable_cpus()
    if workers is None:
        return cpus
    return max(1, workers if workers > 0 else cpus + 1 + workers)


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=_PREFIX)
            _POOLS[threads] = pool
        return pool


def run_blocks(
    task: Callable[[int, int], Any], total: int, unit_bytes: int, threads: int
) -> list[Any]:
    """``[task(start, stop), ...]`` over consecutive blocks covering ``range(total)``, run
    on ``threads`` threads. Blocks hold about :data:`BLOCK_BYTES` (``unit_bytes`` per
    index), and there are at least four per thread where ``total`` allows (load balance).

    >>> run_blocks(lambda a, b: (a, b), 10, 1, 1)
    [(0, 3), (3, 6), (6, 9), (9, 10)]
    """
    size = max(1, min(BLOCK_BYTES // max(unit_bytes, 1), -(-total // (4 * threads))))
    blocks = [(i, min(i + size, total)) for i in range(0, total, size)]
    results: list[Any] = [None] * len(blocks)
    nested = threading.current_thread().name.startswith(_PREFIX)  # no waiting on own pool
    if threads <= 1 or len(blocks) <= 1 or nested:
        for n, (b0, b1) in enumerate(blocks):
            results[n] = task(b0, b1)
        return results
    # ``threads - 1`` pool threads and the calling thread take the next block from a
    # shared counter until none is left (one hand-off per thread, not one per block)
    counter = itertools.count()

    def worker() -> None:
        for n in iter(counter.__next__, None):
            if n >= len(blocks):
                return
            results[n] = task(*blocks[n])

    helpers = min(threads, len(blocks)) - 1
    futures = [_pool(helpers).submit(worker) for _ in range(helpers)]
    try:
        worker()
    finally:
        for f in futures:
            f.result()  # waits; re-raises a helper's exception
    return results
