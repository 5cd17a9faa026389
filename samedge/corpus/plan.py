"""The shard plan of a corpus run: which inputs make which shards, decided before any work.

Inputs are expanded exactly as ``samedge extract`` expands them (directories
searched recursively, sorted). They are then cut into *units*:

- a run of consecutive plain-text files (one document each) is one unit;
- each JSONL file and each Parquet file is one unit;
- an input that cannot be read at all is a unit holding one failure.

A unit's items (documents and failures, in ``samedge extract``'s order) are
cut into shards of ``shard_size`` items: shard ``shard-UUUUU-KKKKK`` holds items
``K*size .. (K+1)*size-1`` of unit ``U``. The name depends only on the inputs,
so a rerun finds the shards an earlier run completed. ``shard_size`` is a
multiple of the extractor's batch (records.DOCS_PER_BATCH): within a shard the
items go to the Extractor in the same groups as ``samedge extract`` would form,
so records are identical (llama.cpp's answers may depend on how many tokens
share a decode; see tests/test_extract.py).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..extract.inputs import JSONL_SUFFIXES, Document, Failure, documents_of, expand_paths

PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class Unit:
    index: int
    kind: str                       # "text", "jsonl" or "parquet"
    files: tuple[str, ...] = ()     # names as samedge extract shows them (ids and reasons use them)
    failures: tuple = ()            # (position, id, reason) of members known to fail before reading

    def describe(self) -> dict:
        """What the run manifest records (to refuse a rerun over other inputs)."""
        failed = {pos for pos, _, _ in self.failures}
        sizes = [None if i in failed else os.path.getsize(f) for i, f in enumerate(self.files)]
        return {"kind": self.kind, "files": list(self.files), "sizes": sizes}


@dataclass
class Plan:
    units: list[Unit]
    shard_size: int
    errors: str = "strict"
    jsonl: bool | None = None
    by_path: dict = field(default_factory=dict)  # absolute path -> (unit index, position in unit, name, kind)

    def min_shards(self) -> int:
        """A lower bound on the number of shards (a JSONL or Parquet file holds at least one)."""
        return sum(-(-len(u.files) // self.shard_size) if u.kind == "text" else 1 for u in self.units)

    def readable(self) -> list[str]:
        """Absolute paths of the files an engine must read."""
        return list(self.by_path)


def shard_name(unit: int, k: int) -> str:
    return f"shard-{unit:05d}-{k:05d}"


def _kind(path: Path, jsonl: bool | None) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if jsonl is not None:
        return "jsonl" if jsonl else "text"
    return "jsonl" if suffix in JSONL_SUFFIXES else "text"


def make_plan(paths, *, glob: str = "*", errors: str = "strict", jsonl: bool | None = None,
              shard_size: int = 256, batch: int = 16) -> Plan:
    """Expand ``paths`` and cut them into units (reads no file content)."""
    if errors not in ("strict", "replace"):
        raise UserError(f"--errors must be strict or replace, not {errors!r}")
    if shard_size < 1 or shard_size % batch:
        raise UserError(f"--shard-size must be a positive multiple of {batch} (the extraction batch), "
                        f"not {shard_size}")
    if not paths:
        raise UserError("no input given")
    units: list[Unit] = []
    run: list[str] = []
    run_failures: list[tuple] = []

    def close_run():
        if run:
            units.append(Unit(len(units), "text", tuple(run), tuple(run_failures)))
            run.clear()
            run_failures.clear()

    for item in expand_paths(paths, glob):
        if item == "-":
            raise UserError("extract-corpus reads files and directories, not stdin ('-')")
        # An input that fails before reading is one item, as in samedge extract: it joins the text run.
        if isinstance(item, Failure):
            run_failures.append((len(run), item.id, item.reason))
            run.append(item.id)
            continue
        name = str(item)
        problem = _unreadable(item)
        if problem:
            run_failures.append((len(run), name, f"{name}: {problem}"))
            run.append(name)
            continue
        kind = _kind(item, jsonl)
        if kind == "text":
            run.append(name)
        else:
            close_run()
            units.append(Unit(len(units), kind, (name,)))
    close_run()
    plan = Plan(units, shard_size, errors, jsonl)
    for unit in units:
        failed = {pos for pos, _, _ in unit.failures}
        for pos, name in enumerate(unit.files):
            if pos not in failed:
                plan.by_path[os.path.abspath(name)] = (unit.index, pos, name, unit.kind)
    return plan


def _unreadable(path: Path) -> str:
    """Why a file cannot be read, before any engine tries (an engine's reader would stop the job)."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a directory"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return ""


# --- items ---------------------------------------------------------------------------

def items_of(name: str, data: bytes, kind: str, errors: str) -> list:
    """Documents and Failures of one file, exactly as ``samedge extract`` yields them."""
    if kind == "parquet":
        return _parquet_items(name, data)
    items = []
    try:
        for item in documents_of(name, data, errors, kind == "jsonl"):
            items.append(item)
    except UserError as e:
        items.append(Failure(name, str(e)))
    return items


def _parquet_items(name: str, data: bytes) -> list:
    """Rows of a Parquet file with a string ``text`` column (and an optional ``id`` column)."""
    try:
        import pyarrow.parquet as pq
        table = pq.read_table(io.BytesIO(data))
    except ImportError:
        return [Failure(name, f"{name}: reading Parquet needs pyarrow (pip install 'samedge[ray]')")]
    except Exception as e:  # pyarrow raises ArrowInvalid and friends for a damaged file
        return [Failure(name, f"{name}: not a readable Parquet file ({e})")]
    if "text" not in table.column_names:
        return [Failure(name, f"{name}: Parquet file has no 'text' column (columns: {', '.join(table.column_names)})")]
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist() if "id" in table.column_names else [None] * len(texts)
    items = []
    for row, (text, doc_id) in enumerate(zip(texts, ids)):
        where = f"{name}:{row}"
        if not isinstance(text, str):
            items.append(Failure(where, f"{where}: 'text' is not a string"))
        elif not text:
            items.append(Failure(where, f"{where}: 'text' is empty"))
        else:
            items.append(Document(where if doc_id is None else str(doc_id), text))
    return items


def item_rows(plan: Plan, unit: int, position: int, items: list, skip: set) -> list[dict]:
    """Flat rows for the engines: shard, sequence in unit, id, text, reason ('' for a document)."""
    base = position  # a text unit holds one item per file; other units are one file
    rows = []
    for offset, item in enumerate(items):
        seq = base + offset
        shard = shard_name(unit, seq // plan.shard_size)
        if shard in skip:
            continue
        if isinstance(item, Document):
            rows.append({"shard": shard, "seq": seq, "id": item.id, "text": item.text, "reason": ""})
        else:
            rows.append({"shard": shard, "seq": seq, "id": item.id, "text": "", "reason": item.reason})
    return rows


def failure_rows(plan: Plan, skip: set) -> list[dict]:
    """Rows of the inputs that failed before reading (unreadable paths, empty directories)."""
    rows = []
    for unit in plan.units:
        for pos, doc_id, reason in unit.failures:
            rows += item_rows(plan, unit.index, pos, [Failure(doc_id, reason)], skip)
    return rows


def unit_rows(plan: Plan, path: str, data: bytes, skip: set) -> list[dict]:
    """The rows of one read file (its absolute path as planned)."""
    unit, pos, name, kind = plan.by_path[path]
    return item_rows(plan, unit, pos, items_of(name, data, kind, plan.errors), skip)
