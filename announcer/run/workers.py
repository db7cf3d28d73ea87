"""Work on a whole series spread over the machine's cores, for `check` and `preview` (SPEC 7).

Rendering and building a message is pure Python: one core does a few hundred a second, so a
series of a thousand talks is split into chunks that forked worker processes handle side by
side. Forked workers inherit the loaded series and its plan; only item numbers go to them and
only plain results (problems, previews) come back. The items of one group (a talk's messages)
stay in one chunk, so a worker parses a talk's abstract and builds its invite once for all of
them. Small work, and systems other than Linux (macOS's fork is unsafe with its system
libraries), run here, in order, the same way.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

SERIAL_BELOW = 200      # items: fewer than this are done here (a worker takes ~20 ms to start)
CHUNKS_PER_WORKER = 4   # several chunks each, so a worker that is done early takes another
MAX_WORKERS = 8         # a container may show many cores but grant few: more would only contend

_job: tuple[Callable[[Sequence[Any]], list[Any]], Sequence[Any]] | None = None   # what the workers inherit


def worker_count() -> int:
    """The cores this process may run on (its affinity, which containers narrow; Linux only)."""
    return len(os.sched_getaffinity(0))


def in_chunks(work: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item],
              group: Callable[[Item], Hashable]) -> list[Result]:
    """One result per item, in the items' order, from `work` applied to chunks of them on every core.

    `work` returns one result per item it is given. Items of the same group share a chunk.
    Workers are forked, so `work` and `items` need not pickle; results must. What a chunk raises
    is raised here.
    """
    import multiprocessing  # here: most commands never need it
    from concurrent.futures import ProcessPoolExecutor

    global _job
    if sys.platform != "linux" or len(items) < SERIAL_BELOW:
        return work(items)
    workers = min(worker_count(), MAX_WORKERS)
    if workers < 2:
        return work(items)
    chunks = _chunks(items, group, size=-(-len(items) // (workers * CHUNKS_PER_WORKER)))
    results: list[Any] = [None] * len(items)
    _job = (work, items)
    collecting = gc.isenabled()
    gc.freeze()  # the workers' collections then skip what they inherit, and leave its pages shared
    # Nor do workers collect at all: what they make is short-lived and nearly free of cycles
    # (a few hundred objects for a thousand talks), and collecting it costs 3-4 % of their time.
    # This process, which only waits and gathers results meanwhile, collects again after.
    gc.disable()
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for numbers, chunk_results in zip(chunks, pool.map(_run_chunk, chunks)):
                for number, result in zip(numbers, chunk_results, strict=True):
                    results[number] = result
    finally:
        if collecting:
            gc.enable()
        gc.unfreeze()
        _job = None
    return results


def _chunks(items: Sequence[Item], group: Callable[[Item], Hashable], size: int) -> list[list[int]]:
    """Item numbers in chunks of about `size`, whole groups each, in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for number, item in enumerate(items):
        groups.setdefault(group(item), []).append(number)
    chunks: list[list[int]] = [[]]
    for numbers in groups.values():
        if len(chunks[-1]) >= size:
            chunks.append([])
        chunks[-1].extend(numbers)
    return chunks


def _run_chunk(numbers: list[int]) -> list[Any]:
    assert _job is not None, "a worker runs only in a process forked by in_chunks"
    work, items = _job
    return work([items[number] for number in numbers])
