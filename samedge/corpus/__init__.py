"""Corpus extraction: many documents, sharded output, on Ray or on a local process pool.

    from samedge.corpus import run_corpus
    summary = run_corpus(["corpus/"], "out/", bundle="bundles/legal", engine="ray", num_actors=2)

The records are those of ``samedge extract`` (the same Extractor, batches and
writer); the shards, resumability and the errors file are in
``samedge.corpus.output``; which document goes to which shard is in
``samedge.corpus.plan``; the engines are ``ray_engine`` and ``local_engine``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import UserError

ENGINES = ("ray", "local")
FORMATS = ("jsonl", "parquet")
DEFAULT_SHARD_SIZE = 256


def run_corpus(paths, out, *, bundle=None, engine: str = "ray", address: str | None = None,
               num_actors: int | None = None, num_cpus: int | None = None, threads: int = 1, n_seq: int = 8,
               answer_tokens: int | None = None, labels=None, fmt: str = "jsonl", glob: str = "*",
               jsonl: bool | None = None, errors: str = "strict", shard_size: int = DEFAULT_SHARD_SIZE,
               progress: bool | None = None) -> dict:
    """Extract every document under ``paths`` into shards in ``out``; returns the run's summary.

    A rerun over the same inputs skips the shards already complete. Failed
    documents are listed in ``out/errors.jsonl`` and never stop the run.
    """
    from tqdm.auto import tqdm

    from ..extract.records import DOCS_PER_BATCH
    from ..bundle import default_bundle, labels_of, verify_bundle
    from . import output
    from .plan import make_plan

    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if address and engine != "ray":
        raise UserError("--address joins a Ray cluster: it needs --engine ray")
    if num_actors is not None and num_actors < 1:
        raise UserError(f"--num-actors must be at least 1, not {num_actors}")
    if engine == "ray":
        from .ray_engine import import_ray
        import_ray()  # a missing Ray is one line, before any work
    if fmt == "parquet" or any(str(p).lower().endswith((".parquet", ".pq")) for p in paths):
        _need_pyarrow()
    bundle_path = Path(bundle) if bundle is not None else default_bundle()
    data = verify_bundle(bundle_path)  # here too, so that a bad bundle is one line before any worker starts
    labels = labels or labels_of(data)
    plan = make_plan(paths, glob=glob, errors=errors, jsonl=jsonl, shard_size=shard_size, batch=DOCS_PER_BATCH)
    out = Path(out)
    manifest = {"format": output.FORMAT, "bundle_files": data["files"], "labels": [lab.to_dict() for lab in labels],
                "inputs": [u.describe() for u in plan.units], "shard_size": shard_size, "errors": errors,
                "output_format": fmt, "n_seq": n_seq, "answer_tokens": answer_tokens}
    worker_kwargs = {"bundle": str(bundle_path.resolve()), "out": str(out.resolve()), "fmt": fmt, "errors": errors,
                     "threads": threads, "n_seq": n_seq, "labels": labels, "answer_tokens": answer_tokens}
    if progress is None:
        progress = sys.stderr.isatty()
    with output.locked(out):
        output.check_manifest(out, manifest)
        skip = output.completed(out)
        counts = {"shards": 0, "documents": 0, "entities": 0, "failures": 0}
        bar = tqdm(desc=f"extract-corpus ({engine})", unit="doc", disable=not progress, file=sys.stderr)

        def on_shard(row):
            counts["shards"] += 1
            for key in ("documents", "entities", "failures"):
                counts[key] += int(row[key])
            bar.update(int(row["items"]))

        started = time.time()
        try:
            if engine == "ray":
                from .ray_engine import run_ray
                run_ray(plan, worker_kwargs, skip, address=address, num_actors=num_actors, num_cpus=num_cpus,
                        on_shard=on_shard)
            else:
                from .local_engine import run_local
                run_local(plan, worker_kwargs, skip, num_actors=num_actors, on_shard=on_shard)
        finally:
            bar.close()
        seconds = time.time() - started
        summary = {"engine": engine, "bundle": str(bundle_path), "out": str(out), "skipped_shards": len(skip),
                   "this_run": dict(counts, seconds=round(seconds, 2),
                                    docs_per_s=round(counts["documents"] / seconds, 2) if seconds > 0 else None)}
        return output.finish(out, summary)


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("Parquet needs pyarrow: pip install 'samedge[ray]'") from None
