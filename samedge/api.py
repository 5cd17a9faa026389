"""The Python API behind the CLI commands that move many documents: extract and build.

The CLI modules only parse options and print; everything else is here, so
scripts can call the same functions.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from .data.writers import format_documents
from .files import atomic_path
from .inputs import Document, Failure, iter_documents

DOCS_PER_BATCH = 16  # documents handed to the extractor at once (their chunks decode together)


def format_table(doc: dict) -> str:
    """A human-readable block per document: offsets, label, mention."""
    lines = [f"== {doc['id']} ({len(doc['entities'])} entities)"]
    for e in doc["entities"]:
        lines.append(f"  {e['start']:>7}-{e['end']:<7} {e['label']:<22} {e['text']}")
    return "\n".join(lines) + "\n"


def render(doc: dict, fmt: str) -> str:
    return format_table(doc) if fmt == "table" else format_documents([doc], fmt)


@contextlib.contextmanager
def _sink(output):
    """stdout, or a temp file renamed over ``output`` only when everything was written."""
    if output is None:
        yield sys.stdout
        return
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        yield f


def _batches(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_extract(paths, *, bundle=None, labels=None, fmt="jsonl", output=None, glob="*", jsonl=None,
                errors="strict", threads=None, n_seq=8, extractor=None, echo=None, progress=None) -> dict:
    """Extract entities from every readable input; returns a summary with the failures listed.

    The model is loaded when the first readable document arrives, so a run whose
    inputs all fail reports them at once (and never needs the bundle). The
    progress bar is shown only when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    from .bundle import load_extractor

    if progress is None:
        progress = sys.stderr.isatty()
    failures, n_docs, n_entities = [], 0, 0
    bar = tqdm(desc="extract", unit="doc", disable=not progress, file=sys.stderr)
    with _sink(output) as out:
        for batch in _batches(iter_documents(paths, glob=glob, errors=errors, jsonl=jsonl), DOCS_PER_BATCH):
            docs = [d for d in batch if isinstance(d, Document)]
            failures += [f.reason for f in batch if isinstance(f, Failure)]
            if not docs:
                continue
            if extractor is None:
                extractor = load_extractor(bundle, threads=threads, n_seq=n_seq, labels=labels)
            results = extractor.extract_many([d.text for d in docs], ids=[d.id for d in docs])
            for result in results:
                if errors == "replace":
                    result["offsets"] = "decoded text (invalid UTF-8 replaced by U+FFFD)"
                out.write(render(result, fmt))
                n_entities += len(result["entities"])
            n_docs += len(docs)
            bar.update(len(docs))
    bar.close()
    if extractor is not None:
        used = extractor.info.get("bundle")
    else:
        from .bundle import default_bundle
        from .errors import UserError
        try:
            used = str(bundle if bundle is not None else default_bundle())
        except UserError:
            used = None
    return {"bundle": used, "documents": n_docs, "entities": n_entities, "failures": failures}
