"""The Ray engine: Ray Data reads the files, an actor pool extracts the shards.

    read_binary_files (one row per file)
      -> map_batches: each file's documents and failures as rows tagged with their shard (plan.unit_rows)
      -> groupby(shard).map_groups(ShardActor): a hash shuffle on the shard name, then map_batches
         over an actor pool, one call per shard; each actor loads (and verifies) the bundle once
      -> one summary row per shard, streamed back to the driver for the progress bar

Without ``address`` a local Ray instance starts with ``num_cpus`` logical CPUs;
with it (``auto`` or ``HOST:PORT``) the run joins that cluster. On a cluster the
bundle, the inputs and OUT must be at the same path on every node (a shared
file system), and samedge must be installed there.
"""

from __future__ import annotations

import logging
import os

from ..errors import UserError


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'samedge[ray]' (or use --engine local)") from None
    return ray


class ShardActor:
    """map_groups' callable class: one ShardWorker per actor, one call per shard."""

    def __init__(self, worker_kwargs: dict):
        from .worker import ShardWorker

        self.worker = ShardWorker(**worker_kwargs)

    def __call__(self, batch: dict) -> dict:
        if not batch["shard"][0]:  # the sentinel row (see run_ray)
            return {"shard": [""], "documents": [0], "entities": [0], "failures": [0], "items": [0]}
        rows = [{"seq": int(seq), "id": str(doc_id), "text": str(text), "reason": str(reason)}
                for seq, doc_id, text, reason in zip(batch["seq"], batch["id"], batch["text"], batch["reason"])]
        shard = str(batch["shard"][0])
        marker = self.worker.run(shard, rows)
        return {"shard": [shard], "documents": [marker["documents"]], "entities": [marker["entities"]],
                "failures": [len(marker["failures"])], "items": [len(rows)]}


def _init(ray, address, num_cpus, num_actors):
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
             "configure_logging": True}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot join the Ray cluster at {address} ({e}); start one with `ray start --head`") \
                from None
        return True
    # The actors take one CPU each; one more is left for Ray Data's read and shuffle tasks.
    ray.init(num_cpus=num_cpus or num_actors + 1, object_store_memory=_object_store_bytes(), **quiet)
    return True


def _object_store_bytes() -> int:
    """A modest object store (Ray's default takes 30% of RAM, which a laptop also needs)."""
    return int(os.environ.get("SAMEDGE_RAY_OBJECT_STORE", 512 * 1024 * 1024))


def run_ray(plan, worker_kwargs: dict, skip: set, *, address=None, num_actors=None, num_cpus=None, on_shard=None):
    """Run every shard not in ``skip``; call ``on_shard(summary_row)`` as each finishes."""
    ray = import_ray()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local instance: no token to set up
    started = _init(ray, address, num_cpus, num_actors or 1)
    try:
        if num_actors is None:
            num_actors = max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
        _quiet_data()
        from . import plan as planning

        import pyarrow as pa

        schema = pa.schema([("shard", pa.string()), ("seq", pa.int64()), ("id", pa.string()), ("text", pa.string()),
                            ("reason", pa.string())])
        # Every block carries this schema, even an empty one (a file whose shards are all done), and a
        # sentinel row keeps the shuffle from seeing only empty blocks.
        sentinel = {"shard": "", "seq": 0, "id": "", "text": "", "reason": ""}
        rows_ds = ray.data.from_arrow(pa.Table.from_pylist([sentinel, *planning.failure_rows(plan, skip)], schema=schema))
        paths = plan.readable()
        if paths:
            def file_rows(batch):
                rows = []
                for path, data in zip(batch.column("path").to_pylist(), batch.column("bytes").to_pylist()):
                    rows += planning.unit_rows(plan, os.path.abspath(path), data, skip)
                return pa.Table.from_pylist(rows, schema=schema)
            files = ray.data.read_binary_files(paths, include_paths=True)
            rows_ds = files.map_batches(file_rows, batch_format="pyarrow").union(rows_ds)
        # Each partition of the shuffle is one actor task (several shards): enough of them to balance
        # the actors and move the progress bar, few enough to keep Ray's per-task overhead small.
        partitions = max(2 * num_actors, min(64, plan.min_shards()))
        results = rows_ds.groupby("shard", num_partitions=partitions).map_groups(
            ShardActor, fn_constructor_args=(worker_kwargs,), batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=num_actors), num_cpus=1,
            max_restarts=0)  # a lost actor fails the run; a rerun resumes from the completed shards
        for row in results.iter_rows():
            if row["shard"] and on_shard is not None:
                on_shard(row)
    finally:
        if started:
            ray.shutdown()


def _quiet_data():
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # also "progress bars disabled", which is our choice
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray").setLevel(logging.WARNING)
