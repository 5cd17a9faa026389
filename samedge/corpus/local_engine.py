"""The local engine: the same shards as the Ray engine, on a process pool of this machine.

The driver reads each file, cuts its rows into shards (samedge.corpus.plan) and
submits every incomplete shard; each pool process loads (and verifies) the
bundle once, in its initializer. At most two shards per process are in
flight, so a large corpus is never held in memory at once.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os

_WORKER = None


def _init_worker(worker_kwargs: dict) -> None:
    global _WORKER
    from .worker import ShardWorker

    _WORKER = ShardWorker(**worker_kwargs)


def _run_shard(shard: str, rows: list[dict]) -> dict:
    marker = _WORKER.run(shard, rows)
    return {"shard": shard, "documents": marker["documents"], "entities": marker["entities"],
            "failures": len(marker["failures"]), "items": len(rows)}


def _shards(plan, skip: set):
    """(shard, rows) in plan order, each shard whole: a file's rows, or a run of text files'."""
    from ..extract.inputs import Failure
    from . import plan as planning

    pending: dict[str, list] = {}
    for unit in plan.units:
        known = {pos: (doc_id, reason) for pos, doc_id, reason in unit.failures}
        for pos, name in enumerate(unit.files):
            if pos in known:
                rows = planning.item_rows(plan, unit.index, pos, [Failure(*known[pos])], skip)
            else:
                path = os.path.abspath(name)
                with open(path, "rb") as f:
                    rows = planning.unit_rows(plan, path, f.read(), skip)
            for row in rows:
                pending.setdefault(row["shard"], []).append(row)
            # A shard is whole once the plan has moved past its last item (a text unit holds one
            # item per file), or past its unit.
            last = pos == len(unit.files) - 1
            for shard in list(pending):
                k = int(shard.rsplit("-", 1)[1])
                if last or pos + 1 >= (k + 1) * plan.shard_size:
                    yield shard, pending.pop(shard)


def run_local(plan, worker_kwargs: dict, skip: set, *, num_actors=None, on_shard=None) -> None:
    """Run every shard not in ``skip`` on ``num_actors`` processes (default: one per CPU)."""
    num_actors = num_actors or max(1, len(os.sched_getaffinity(0)))
    ctx = multiprocessing.get_context("spawn")  # llama.cpp and OpenMP do not survive a fork
    with futures.ProcessPoolExecutor(num_actors, mp_context=ctx, initializer=_init_worker,
                                     initargs=(worker_kwargs,)) as pool:
        in_flight = set()
        for shard, rows in _shards(plan, skip):
            in_flight.add(pool.submit(_run_shard, shard, rows))
            if len(in_flight) >= 2 * num_actors:
                done, in_flight = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
                _report(done, on_shard)
        done, _ = futures.wait(in_flight)
        _report(done, on_shard)


def _report(done, on_shard) -> None:
    for fut in done:
        row = fut.result()
        if on_shard is not None:
            on_shard(row)
