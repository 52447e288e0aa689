"""The Dask executor against the local pool: same bytes, survives a dead worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import toyformat

distributed = pytest.importorskip("distributed", reason="medscrub-dask needs dask.distributed")

from medscrub.context import RunConfig  # noqa: E402
from medscrub.output import STATE_DIR  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub_dask.plugin import work_units  # noqa: E402


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(root).parts
    }


def make_inputs(root: Path, n: int, sleep: str = "0") -> Path:
    for i in range(n):
        toyformat.write_toy(
            root / f"f{i // 4}" / f"{i}.toy",
            {"name": f"Person Number{i}", "id": f"ID{i:06d}", "date": "2019-01-02", "sleep": sleep},
        )
    return root


def config(secret, src, out):
    return RunConfig(None, secret, src, out, extra_plugins=(toyformat.plugin,), plugins=("dask",))


def test_dask_output_is_byte_identical_to_the_local_pool(tmp_path, secret):
    src = make_inputs(tmp_path / "in", 12)
    local = run_batch(config(secret, src, tmp_path / "local"), workers=2)
    dask = run_batch(config(secret, src, tmp_path / "dask"), workers=2, executor="dask",
                     executor_options={"unit_items": 3})
    assert local.exit_code == dask.exit_code == 0
    assert len(dask.results) == 12
    assert tree(tmp_path / "local") == tree(tmp_path / "dask")


def test_a_killed_worker_does_not_stop_the_run(tmp_path, secret):
    src = make_inputs(tmp_path / "in", 16, sleep="0.25")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    killed = []
    try:
        # The workers' process ids, asked before the run: a second client
        # talking to the cluster during the run would share the executor's
        # thread and event loop, which distributed does not support.
        with distributed.Client(cluster) as client:
            victim = sorted(client.run(os.getpid).values())[0]

        def kill_on_first_result(result, total):
            if result is not None and not killed:  # mid-run: units are still queued
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        summary = run_batch(config(secret, src, tmp_path / "out"), executor="dask", progress=kill_on_first_result,
                            executor_options={"scheduler": cluster.scheduler_address, "unit_items": 2})
    finally:
        cluster.close()
    assert killed, "the test did not kill a worker"
    assert summary.exit_code == 0, [r.reason for r in summary.results if r.status != "done"]
    assert len(summary.results) == 16
    assert len(tree(tmp_path / "out")) == 16


def test_work_units_keep_order_and_respect_limits():
    from medscrub.model import Item

    items = [Item(f"{i}", "toy", (Path(f"/x/{i}"),), Path("/x"), size=100 if i != 5 else 10_000) for i in range(10)]
    units = list(work_units(items, max_items=3, max_bytes=1000))
    assert [i.id for u in units for i in u] == [str(i) for i in range(10)]
    assert all(len(u) <= 3 for u in units)
    assert [i.id for i in units[2]] == ["5"]  # the big one travels alone
