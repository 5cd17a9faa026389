"""The Python API behind the CLI commands that move many documents: extract and build.

The CLI modules only parse options and print; everything else is here, so
scripts can call the same functions.
"""

from __future__ import annotations

import contextlib
import json
import sys

from ..data.writers import document_writer, format_documents
from ..files import atomic_path
from .inputs import Document, Failure, iter_documents
from .records import DOCS_PER_BATCH, REPLACED, batches, new_counts, note_offsets  # noqa: F401  (public here too)

# A document longer than this (characters) is extracted alone and, in JSONL, written as it goes:
# its entities are never all held (Extractor.stream), and it ends its batch, so that a folder of
# big files never holds more than one of them.
STREAM_CHARS = 1_000_000
TEXT_PIECE = 1 << 20  # characters of a streamed document's text JSON-escaped at a time


def format_table(doc: dict) -> str:
    """A human-readable block per document: offsets, label, mention."""
    lines = [f"== {doc['id']} ({len(doc['entities'])} entities)"]
    for e in doc["entities"]:
        lines.append(f"  {e['start']:>7}-{e['end']:<7} {e['label']:<22} {e['text']}")
    return "\n".join(lines) + "\n"


def extraction_meta(extractor) -> tuple[list[str], dict]:
    """The label names of ``extractor`` and what the html and labelstudio formats say of the run:
    the bundle, its target, and ``model_version`` = TARGET/first 12 hex digits of the sha256 of
    the bundle's bundle.json (which lists the sha256 of every file of the bundle)."""
    import hashlib
    from pathlib import Path

    labels = [getattr(lab, "name", str(lab)) for lab in getattr(extractor, "labels", ())]
    info = getattr(extractor, "info", None) or {}
    target = info.get("target")
    target = target.get("name") if isinstance(target, dict) else target
    bundle = info.get("bundle")
    version = None
    if bundle:
        try:
            version = hashlib.sha256((Path(bundle) / "bundle.json").read_bytes()).hexdigest()[:12]
        except OSError:
            pass
    model_version = "/".join(str(x) for x in (target, version) if x) or "samedge"
    return labels, {"title": target, "bundle": bundle, "model_version": model_version}


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


def _big(item) -> bool:
    return isinstance(item, Document) and len(item.text) > STREAM_CHARS


def _write_streamed(out, doc: Document, extractor, errors: str) -> int:
    """One JSONL record written as it is found, byte for byte what ``render(result, "jsonl")`` gives
    for the whole result; returns the number of entities."""
    counts = new_counts()
    out.write(json.dumps({"id": doc.id}, ensure_ascii=False)[:-1] + ', "text": "')
    for i in range(0, len(doc.text), TEXT_PIECE):  # escaping is per character: pieces join exactly
        out.write(json.dumps(doc.text[i:i + TEXT_PIECE], ensure_ascii=False)[1:-1])
    out.write('", "entities": [')
    n = 0
    for entity in extractor.stream(doc.text, counts):
        out.write((", " if n else "") + json.dumps(entity, ensure_ascii=False))
        n += 1
    tail = {"counts": counts}
    if errors == "replace":
        tail["offsets"] = REPLACED
    out.write("], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n")
    return n


def extract_records(extractor, texts: list[str], ids: list[str], *, errors: str = "strict") -> list[dict]:
    """The records `samedge extract` writes for these texts, one per text in order (``render(record,
    "jsonl")`` is its JSONL line). `samedge serve` answers with these too."""
    return [note_offsets(record, errors) for record in extractor.extract_many(texts, ids=ids)]


def run_extract(paths, *, bundle=None, labels=None, fmt="jsonl", output=None, glob="*", jsonl=None,
                errors="strict", threads=None, n_seq=None, extractor=None, echo=None, progress=None) -> dict:
    """Extract entities from every readable input; returns a summary with the failures listed.

    The model is loaded when the first readable document arrives, so a run whose
    inputs all fail reports them at once (and never needs the bundle). The
    progress bar is shown only when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    from ..bundle import load_extractor

    if progress is None:
        progress = sys.stderr.isatty()
    failures, n_docs, n_entities = [], 0, 0
    bar = tqdm(desc="extract", unit="doc", disable=not progress, file=sys.stderr)
    with _sink(output) as out:
        writer, started = document_writer(out, fmt, lambda doc: render(doc, fmt)), False
        for batch in batches(iter_documents(paths, glob=glob, errors=errors, jsonl=jsonl), DOCS_PER_BATCH, _big):
            docs = [d for d in batch if isinstance(d, Document)]
            failures += [f.reason for f in batch if isinstance(f, Failure)]
            if not docs:
                continue
            if extractor is None:
                extractor = load_extractor(bundle, threads=threads, n_seq=n_seq, labels=labels)
            if not started:  # html and labelstudio open with the labels and the bundle's version
                writer.start(*extraction_meta(extractor))
                started = True
            # A big document ends its batch (see _big): the others first, then it, streamed.
            streamed = docs.pop() if fmt == "jsonl" and _big(docs[-1]) and hasattr(extractor, "stream") else None
            if docs:
                for result in extract_records(extractor, [d.text for d in docs], [d.id for d in docs], errors=errors):
                    writer.document(result)
                    n_entities += len(result["entities"])
                    n_docs += 1
            if streamed is not None:
                n_entities += _write_streamed(out, streamed, extractor, errors)
                n_docs += 1
            bar.update(len(docs) + (streamed is not None))
        if not started:
            writer.start((), {})
        writer.end()
    bar.close()
    if extractor is not None:
        used = extractor.info.get("bundle")
    else:
        from ..bundle import default_bundle
        from ..errors import UserError
        try:
            used = str(bundle if bundle is not None else default_bundle())
        except UserError:
            used = None
    return {"bundle": used, "documents": n_docs, "entities": n_entities, "failures": failures}
