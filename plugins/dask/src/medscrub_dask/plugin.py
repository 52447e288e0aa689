"""The ``dask`` executor: a batch on a dask.distributed cluster.

Items go to the cluster in work units (consecutive items of the discovery
order, so a folder's files travel together, up to a count and a size), and
each worker builds its run context once per run.  Results come back to the
client, which alone writes the manifest and the re-identification map: no
file is shared between nodes except the input and output trees.

A work unit whose worker dies is rescheduled by Dask; one that keeps killing
workers (``KilledWorker``) is split, and each of its items is tried alone, so
only a poisonous item fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Iterable, Iterator

from medscrub import Item, ItemResult, hookimpl
from medscrub.context import RunConfig, RunContext
from medscrub.executors import default_workers
from medscrub.pipeline import process_item

DEFAULT_UNIT_ITEMS = 32
DEFAULT_UNIT_BYTES = 256 * 2**20

_CONTEXTS: dict[str, RunContext] = {}


def run_unit(items: list[Item], config: RunConfig, key: str) -> list[ItemResult]:
    """On a worker: process a work unit with this run's context (built once)."""
    context = _CONTEXTS.get(key)
    if context is None:
        _CONTEXTS.clear()  # one run at a time per worker process
        context = _CONTEXTS[key] = RunContext(config)
    return [process_item(item, context) for item in items]


def work_units(items: Iterable[Item], max_items: int, max_bytes: int) -> Iterator[list[Item]]:
    unit: list[Item] = []
    size = 0
    for item in items:
        if unit and (len(unit) >= max_items or size + item.size > max_bytes):
            yield unit
            unit, size = [], 0
        unit.append(item)
        size += item.size
    if unit:
        yield unit


class DaskExecutor:
    def __init__(self, workers: int = 0, options: dict | None = None) -> None:
        options = options or {}
        self.workers = workers or default_workers()
        self.scheduler = options.get("scheduler")
        self.unit_items = int(options.get("unit_items", DEFAULT_UNIT_ITEMS))
        self.unit_bytes = int(options.get("unit_bytes", DEFAULT_UNIT_BYTES))

    def _client(self):
        from distributed import Client, LocalCluster

        if self.scheduler:
            return Client(self.scheduler), None
        cluster = LocalCluster(
            n_workers=self.workers, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=40,
        )
        return Client(cluster), cluster

    def run(self, items: Iterable[Item], config: RunConfig) -> Iterator[ItemResult]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        if not config.cores_per_worker:  # one thread per Dask worker process, as the cluster runs them
            config = dataclasses.replace(config, cores_per_worker=1)
        key = hashlib.sha256(pickle.dumps(config)).hexdigest()[:16]
        client, cluster = self._client()
        try:
            shared = client.scatter(config, broadcast=True)
            units = {}
            for n, unit in enumerate(work_units(items, self.unit_items, self.unit_bytes)):
                future = client.submit(run_unit, unit, shared, key, key=f"medscrub-{key}-{n}", pure=False)
                units[future] = unit
            alone: list[Item] = []
            for future in as_completed(list(units)):
                try:
                    yield from future.result()
                except KilledWorker:
                    alone.extend(units[future])
            for n, item in enumerate(alone):
                future = client.submit(run_unit, [item], shared, key, key=f"medscrub-{key}-alone-{n}", pure=False)
                try:
                    yield from future.result()
                except KilledWorker:
                    yield ItemResult(item.id, item.format, "failed", reason="the worker process died on this item")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


@hookimpl
def medscrub_register_executors(register):
    register("dask", DaskExecutor)
