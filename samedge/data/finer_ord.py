"""FiNER-ORD CSV reader (financial news; CC BY-NC 4.0).

Format: header ``gold_label,gold_token,doc_idx,sent_idx``, one token per row in reading
order; a sentence is a run of rows with the same ``(doc_idx, sent_idx)``. ``gold_label``
is an integer, mapped as upstream maps it (``code/generative_llm_res_seqeval.py``):
0 O, 1 B-PER, 2 I-PER, 3 B-LOC, 4 I-LOC, 5 B-ORG, 6 I-ORG. An ``I-`` with no mention of
its type before it starts one (33 in all), as SOURCE.md counts them.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .spans import csv_rows, iob_spans, join_tokens, to_document, token_spans_to_chars

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
HEADER = ["gold_label", "gold_token", "doc_idx", "sent_idx"]


def read_finer_ord(path: str | Path, id_prefix: str | None = None) -> list[dict]:
    """One document per sentence; tokens joined with single spaces."""
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    reader = csv_rows(path, HEADER)
    docs: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    key = None

    def flush():
        if tokens:
            text, offsets = join_tokens(tokens)
            spans = token_spans_to_chars(iob_spans(tags), offsets)
            docs.append(to_document(f"{prefix}-{len(docs)}", text, spans))
            tokens.clear()
            tags.clear()

    for row in reader:
        lineno = reader.line_num
        if len(row) != 4:
            raise DataError(path, lineno, f"expected 4 fields, got {len(row)}: {row!r}")
        label, token, doc_idx, sent_idx = row
        if label not in ("0", "1", "2", "3", "4", "5", "6"):
            raise DataError(path, lineno, f"gold_label must be an integer 0-6, got {label!r}")
        if not (doc_idx.isdigit() and sent_idx.isdigit()):
            raise DataError(path, lineno, f"doc_idx and sent_idx must be integers, got {doc_idx!r}, {sent_idx!r}")
        token = token.strip()
        if not token or any(ch.isspace() for ch in token):
            raise DataError(path, lineno, f"empty token or token with spaces: {row[1]!r}")
        if (doc_idx, sent_idx) != key:
            flush()
            key = (doc_idx, sent_idx)
        tokens.append(token)
        tags.append(TAGS[int(label)])
    flush()
    if not docs:
        raise DataError(path, 1, "no tokens found")
    return docs
