"""Small pure helpers shared by the dataset readers: tags to spans, tokens to text, tidy spacing.

A span here is ``(start, end, label)`` with ``end`` exclusive: token indices for
``iob_spans``, character offsets everywhere else.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

TAG_RE = re.compile(r"^(?:O|[BI]-\S+)$")


def iob_spans(tags) -> list[tuple[int, int, str]]:
    """Token spans of IOB2 tags. An ``I-X`` after ``O`` or another type starts a mention
    (the IOB1-safe count that every SOURCE.md uses). Tags must already match ``TAG_RE``."""
    spans: list[list] = []
    prev = None
    for i, tag in enumerate(tags):
        if tag == "O":
            prev = None
            continue
        kind, label = tag[0], tag[2:]
        if kind == "B" or prev != label:
            spans.append([i, i + 1, label])
        else:
            spans[-1][1] = i + 1
        prev = label
    return [tuple(s) for s in spans]


def join_tokens(tokens, space_after=None) -> tuple[str, list[tuple[int, int]]]:
    """Text of ``tokens`` (one space between, or none where ``space_after[i]`` is False)
    and each token's character offsets."""
    parts, offsets, pos = [], [], 0
    for i, token in enumerate(tokens):
        offsets.append((pos, pos + len(token)))
        parts.append(token)
        pos += len(token)
        if i < len(tokens) - 1 and (space_after is None or space_after[i]):
            parts.append(" ")
            pos += 1
    return "".join(parts), offsets


def token_spans_to_chars(token_spans, offsets) -> list[tuple[int, int, str]]:
    return [(offsets[s][0], offsets[e - 1][1], label) for s, e, label in token_spans]


def squeeze_spaces(text: str, spans) -> tuple[str, list[tuple[int, int, str]]]:
    """Every whitespace run becomes one space and the ends are stripped, offsets moved to
    match; a span loses its own leading and trailing whitespace. A span of only whitespace
    raises ValueError (the caller names the file and line)."""
    lo, hi = len(text) - len(text.lstrip()), len(text.rstrip())
    out: list[str] = []
    new_index = [0] * len(text)  # meaningful for the non-space characters that spans end on
    for i in range(lo, hi):
        if not text[i].isspace():
            new_index[i] = len(out)
            out.append(text[i])
        elif not text[i - 1].isspace():
            out.append(" ")
    moved = []
    for start, end, label in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            raise ValueError(f"a {label} span holds only whitespace")
        moved.append((new_index[start], new_index[end - 1] + 1, label))
    return "".join(out), moved


def to_document(doc_id: str, text: str, spans) -> dict:
    """The internal document, entities in text order."""
    return {"id": doc_id, "text": text,
            "entities": [{"start": s, "end": e, "label": label, "text": text[s:e]}
                         for s, e, label in sorted(spans, key=lambda x: (x[0], x[1]))]}


def csv_rows(path: Path, header: list[str]):
    """A csv reader over ``path`` past its header row, which must be ``header`` (else a DataError)."""
    from ..errors import DataError
    from .decode import read_text

    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    found = next(reader, None)
    if found != header:
        raise DataError(path, 1, f"expected the header {','.join(header)}, got {found!r}")
    return reader
