"""Work on a whole series spread over the machine's cores, for `check` and `preview` (SPEC 7).

Rendering and building a message is pure Python: one core does a few hundred a second, so a
series of a thousand talks is split into chunks that forked worker processes handle side by
side. Forked workers inherit the loaded series and its plan; only the chunk bounds go to them
and only plain results (problems, warnings, file names) come back. Small work, and systems
other than Linux (macOS's fork is unsafe with its system libraries), run here, in order, the
same way.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 200      # items: fewer than this are done here (a worker takes ~20 ms to start)
CHUNKS_PER_WORKER = 4   # several chunks each, so a worker that is done early takes another

_job: tuple[Callable[[Sequence[Any]], Any], Sequence[Any]] | None = None   # what the workers inherit


def worker_count() -> int:
    """The cores this process may run on (its affinity, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_chunks(work: Callable[[Sequence[Item]], Result], items: Sequence[Item]) -> list[Result]:
    """`work` applied to consecutive chunks of `items`, on every core; the results in order.

    Workers are forked, so `work` and `items` need not pickle; a chunk's result must. What a
    chunk raises is raised here.
    """
    import multiprocessing  # here: most commands never need it
    from concurrent.futures import ProcessPoolExecutor

    global _job
    workers = worker_count()
    if workers < 2 or len(items) < SERIAL_BELOW or sys.platform != "linux":
        return [work(items)]
    size = -(-len(items) // (workers * CHUNKS_PER_WORKER))
    bounds = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    _job = (work, items)
    gc.freeze()  # the workers' collections then skip what they inherit, and leave its pages shared
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_chunk, bounds))
    finally:
        gc.unfreeze()
        _job = None


def _run_chunk(bounds: tuple[int, int]) -> Any:
    assert _job is not None, "a worker runs only in a process forked by in_chunks"
    work, items = _job
    start, stop = bounds
    return work(items[start:stop])
