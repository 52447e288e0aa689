"""The builtin executor: items in this process, or in a local process pool.

Registered as a plugin like any other (``medscrub_register_executors``).
A worker that dies (a decoder crashing on a corrupt file, the OOM killer)
breaks the pool: its items are retried once in a fresh pool, each alone, so
one poisonous file fails by itself and the batch goes on.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .context import RunConfig, available_cores
from .model import Item, ItemResult
from .plugins import hookimpl


def default_workers() -> int:
    return available_cores()


class LocalExecutor:
    def __init__(self, workers: int = 0, options: dict | None = None) -> None:
        self.workers = workers or default_workers()
        self.in_flight = int((options or {}).get("in_flight", self.workers * 4))

    def run(self, items: Iterable[Item], config: RunConfig) -> Iterator[ItemResult]:
        if not config.cores_per_worker:  # each worker's share of this machine
            config = dataclasses.replace(config, cores_per_worker=max(1, available_cores() // self.workers))
        if self.workers == 1:
            yield from self._run_here(items, config)
        else:
            yield from self._run_pool(list(items), config)

    def _run_here(self, items: Iterable[Item], config: RunConfig) -> Iterator[ItemResult]:
        from .pipeline import init_worker, work

        init_worker(config)
        for item in items:
            yield work(item)

    def _pool(self, config: RunConfig, workers: int) -> ProcessPoolExecutor:
        from .pipeline import init_worker

        # forkserver: the parent runs a progress thread, and fork with threads can deadlock
        ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(config,))

    def _run_pool(self, items: list[Item], config: RunConfig) -> Iterator[ItemResult]:
        from .pipeline import work

        pending = list(reversed(items))
        suspects: list[Item] = []  # in flight when a worker died
        pool = self._pool(config, self.workers)
        running: dict[Future, Item] = {}
        try:
            while pending or running:
                while pending and len(running) < self.in_flight:
                    item = pending.pop()
                    running[pool.submit(work, item)] = item
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    item = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        suspects.append(item)
                if broken:
                    suspects.extend(running.values())
                    running.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    yield from self._retry_alone(suspects, config)
                    suspects = []
                    pool = self._pool(config, self.workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _retry_alone(self, items: list[Item], config: RunConfig) -> Iterator[ItemResult]:
        from .pipeline import work

        for item in items:
            pool = self._pool(config, 1)
            try:
                yield pool.submit(work, item).result()
            except BrokenProcessPool:
                yield ItemResult(item.id, item.format, "failed", reason="the worker process died on this item")
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


@hookimpl
def medscrub_register_executors(register):
    register("local", LocalExecutor)
