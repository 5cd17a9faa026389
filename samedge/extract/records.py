"""What `samedge extract`, `extract-corpus` and `serve` share about records and batches.

A record is one document's result: ``{"id", "text", "entities", "counts"}``, plus
``"offsets": REPLACED`` when invalid UTF-8 in its input was replaced (``--errors replace``),
so that a reader knows the offsets are into the decoded text.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

DOCS_PER_BATCH = 16  # documents handed to the extractor at once (their chunks decode together)
REPLACED = "decoded text (invalid UTF-8 replaced by U+FFFD)"


def new_counts() -> dict:
    """A record's counts, all zero: what the extractor saw go wrong (or right) while reading it."""
    return {"chunks": 0, "parse_failures": 0, "dropped_labels": 0, "not_found": 0, "overlaps": 0,
            "split_retries": 0, "unfinished_answers": 0}


def note_offsets(record: dict, errors: str) -> dict:
    """``record``, marked when its offsets are into text decoded with replacements."""
    if errors == "replace":
        record["offsets"] = REPLACED
    return record


def batches(items: Iterable, size: int = DOCS_PER_BATCH, ends_batch: Callable[[object], bool] = lambda item: False
            ) -> Iterator[list]:
    """``items`` in lists of ``size``, in order; an item for which ``ends_batch`` is true closes its list early."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size or ends_batch(item):
            yield batch
            batch = []
    if batch:
        yield batch
