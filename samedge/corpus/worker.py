"""One worker of a corpus run (a Ray actor or a pool process): the bundle loaded once, shards in, shards out.

It reuses samedge's Extractor unchanged (load_extractor verifies every sha256
of the bundle on this machine first) and the records of samedge extract
(api.render). A document whose extraction raises becomes a failure with the
reason; the shard and the job go on.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..extract.api import render
from ..extract.records import DOCS_PER_BATCH, batches, note_offsets
from . import output


class ShardWorker:
    def __init__(self, bundle, out, *, fmt: str = "jsonl", errors: str = "strict", threads: int = 1, n_seq: int = 8,
                 labels=None, answer_tokens: int | None = None):
        from ..bundle import load_extractor

        kw = {} if answer_tokens is None else {"answer_tokens": answer_tokens}
        self.extractor = load_extractor(bundle, threads=threads, n_seq=n_seq, labels=labels, **kw)
        self.out = Path(out)
        self.fmt = fmt
        self.errors = errors

    def run(self, shard: str, rows: list[dict]) -> dict:
        """Extract one shard's rows (sorted by their sequence number) and write it; returns the marker."""
        started = time.perf_counter()
        rows = sorted(rows, key=lambda r: r["seq"])
        records, lines, failures, entities = [], [], [], 0
        # The same groups as samedge extract: DOCS_PER_BATCH items, failures included.
        for group in batches(rows, DOCS_PER_BATCH):
            failures += [{"id": r["id"], "reason": r["reason"], "shard": shard} for r in group if r["reason"]]
            docs = [r for r in group if not r["reason"]]
            if not docs:
                continue
            for doc, result in zip(docs, self._extract(docs)):
                if isinstance(result, str):
                    failures.append({"id": doc["id"], "reason": result, "shard": shard})
                    continue
                records.append(note_offsets(result, self.errors))
                lines.append(render(result, "jsonl"))
                entities += len(result["entities"])
        seconds = round(time.perf_counter() - started, 3)
        return output.write_shard(self.out, shard, self.fmt, records, failures, lines, entities, seconds)

    def _extract(self, docs: list[dict]) -> list:
        """Results for the batch; if the batch raises, each document alone (a failure is its reason)."""
        try:
            return self.extractor.extract_many([d["text"] for d in docs], ids=[d["id"] for d in docs])
        except Exception:
            return [self._one(d) for d in docs]

    def _one(self, doc: dict):
        try:
            return self.extractor.extract_many([doc["text"]], ids=[doc["id"]])[0]
        except Exception as e:  # reported in errors.jsonl; never stops the job
            return f"{doc['id']}: extraction failed ({type(e).__name__}: {e})"
