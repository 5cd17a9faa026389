"""The output folder of a corpus run: shards written atomically, resumable, one writer at a time.

    OUT/
      corpus.json                     the run's inputs and options (a rerun must match them)
      shard-UUUUU-KKKKK.jsonl         records, exactly as `samedge extract` writes them (or .parquet)
      errors.jsonl                    every failed document: {"id", "reason", "shard"}
      summary.json                    totals of the finished run
      .parts/shard-UUUUU-KKKKK.json   a shard's completion marker: counts, failures, worker seconds

A shard is written in two atomic steps: the records file, then its marker. Only
the marker makes a shard complete, so a run killed at any point leaves shards
that a rerun either skips (marker present) or rewrites whole (no duplicates).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..errors import UserError
from ..files import atomic_path, atomic_write_json, atomic_write_text, try_flock

FORMAT = "samedge-corpus/1"
PARTS = ".parts"


def shard_path(out: Path, shard: str, fmt: str) -> Path:
    return out / f"{shard}.{fmt}"


def marker_path(out: Path, shard: str) -> Path:
    return out / PARTS / f"{shard}.json"


@contextlib.contextmanager
def locked(out: Path):
    """Hold OUT for this run (an flock, released even on SIGKILL); sweep killed writers' temp files."""
    out.mkdir(parents=True, exist_ok=True)
    (out / PARTS).mkdir(exist_ok=True)
    fd = try_flock(out / ".lock", blocking=False, create=True)
    if fd is None:
        raise UserError(f"{out}: another extract-corpus run is writing there")
    try:
        for folder in (out, out / PARTS):
            for stale in folder.glob("*.incomplete"):
                stale.unlink(missing_ok=True)
        yield out
    finally:
        os.close(fd)


def check_manifest(out: Path, manifest: dict) -> None:
    """Write corpus.json, or check that an earlier run over OUT had the same inputs and options."""
    path = out / "corpus.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != manifest:
            changed = sorted(k for k in manifest if not isinstance(old, dict) or old.get(k) != manifest[k])
            raise UserError(f"{out} holds a run with other {', '.join(changed) or 'settings'}; "
                            f"use another output folder (or delete it)")
        return
    if any(out.glob("shard-*")):
        raise UserError(f"{out} holds shards but no corpus.json; use another output folder (or delete it)")
    atomic_write_json(path, manifest)


def completed(out: Path) -> set[str]:
    return {p.stem for p in (out / PARTS).glob("shard-*.json")}


def write_shard(out: Path, shard: str, fmt: str, records: list[dict], failures: list[dict], jsonl_lines: list[str],
                entities: int, seconds: float = 0.0) -> dict:
    """Records, then the marker (which makes the shard complete). Returns the marker's content."""
    dest = shard_path(out, shard, fmt)
    if fmt == "parquet":
        _write_parquet(dest, records)
    else:
        atomic_write_text(dest, "".join(jsonl_lines))
    marker = {"shard": shard, "documents": len(records), "entities": entities, "failures": failures,
              "seconds": seconds, "worker": os.getpid()}
    atomic_write_json(marker_path(out, shard), marker)
    return marker


def _write_parquet(dest: Path, records: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    entity = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()), ("text", pa.string())])
    rows = [{"id": r["id"], "text": r["text"], "entities": r["entities"], "counts": json.dumps(r["counts"]),
             "offsets": r.get("offsets")} for r in records]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("entities", pa.list_(entity)),
                        ("counts", pa.string()), ("offsets", pa.string())])
    with atomic_path(dest) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


def finish(out: Path, summary: dict) -> dict:
    """errors.jsonl from every shard's marker (in shard order) and summary.json; returns the totals."""
    totals = {"shards": 0, "documents": 0, "entities": 0, "failures": 0}
    busy = 0.0
    lines = []
    for marker in sorted((out / PARTS).glob("shard-*.json")):
        data = json.loads(marker.read_text(encoding="utf-8"))
        totals["shards"] += 1
        totals["documents"] += data["documents"]
        totals["entities"] += data["entities"]
        totals["failures"] += len(data["failures"])
        busy += data.get("seconds", 0.0)
        lines += [json.dumps(f, ensure_ascii=False) + "\n" for f in data["failures"]]
    atomic_write_text(out / "errors.jsonl", "".join(lines))
    summary = dict(summary, totals=totals, worker_seconds=round(busy, 2), errors_file=str(out / "errors.jsonl"))
    atomic_write_json(out / "summary.json", summary)
    return summary
