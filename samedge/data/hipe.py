"""HIPE-2022 TSV reader (historical newspapers and commentaries, OCR text).

Format: a ``TOKEN NE-COARSE-LIT ... MISC`` header, one token per line, ``# key = value``
metadata lines (``# hipe2022:document_id = ...`` starts a document), blank lines between
documents, IOB2 tags, ``_`` where a column does not apply. There are no blank lines
between sentences: a sentence ends at a token whose MISC holds ``EndOfSentence``, or at
the end of a document.

Choices, for a flat NER view:

- One tag column, the coarse literal layer ``NE-COARSE-LIT`` by default: every
  sub-corpus fills it, while the fine and metonymic layers exist only in some.
- A sentence is cut after an ``EndOfSentence`` token, except where the next token
  continues the same mention (``I-X`` after ``X``): 67 mentions in hipe2020 (and one in
  ajmc) run across such a flag, sentence-splitter errors such as "Mr. | Peter Smith".
  Kept whole, "Mr. Peter Smith" stays one person. SOURCE.md cuts at every flag, which
  splits those mentions in two; ``whole_mentions=False`` reproduces its counts.
- Tokens are joined with single spaces, as in every other catalog domain, so that each
  mention starts and ends on a whitespace token (the CoNLL writer and the evaluation
  tests rely on it). ``no_space_after=True`` honours ``NoSpaceAfter`` (text as printed).
- ``lowercase=True`` folds tag types to lower case, so that topres19th's ``LOC`` and
  ajmc/hipe2020's ``loc`` are one type when the sub-corpora are read as one domain.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import DataError
from .decode import read_lines
from .spans import TAG_RE, iob_spans, join_tokens, to_document, token_spans_to_chars

HEADER = "TOKEN"
DOCUMENT_START = "# hipe2022:document_id"


def read_hipe(path: str | Path, column: str = "NE-COARSE-LIT", id_prefix: str | None = None,
              lowercase: bool = False, whole_mentions: bool = True,
              no_space_after: bool = False) -> list[dict]:
    """One document per sentence, entities from ``column``."""
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    docs: list[dict] = []
    sentence: list[tuple[int, str, str, bool]] = []  # (lineno, token, tag, space after)
    header = None
    repaired = 0
    cut_pending = False  # the last token ended a sentence; cut unless a mention goes on

    def flush():
        nonlocal repaired
        if not sentence:
            return
        tokens = [t for _, t, _, _ in sentence]
        tags = [g for _, _, g, _ in sentence]
        repaired += sum(1 for i, g in enumerate(tags) if g.startswith("I-") and
                        (i == 0 or tags[i - 1][2:] != g[2:] or tags[i - 1] == "O"))
        text, offsets = join_tokens(tokens, [s for _, _, _, s in sentence])
        spans = token_spans_to_chars(iob_spans(tags), offsets)
        docs.append(to_document(f"{prefix}-{len(docs)}", text, spans))
        sentence.clear()

    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            if line.startswith(DOCUMENT_START):
                flush()
            continue
        cols = line.split("\t")
        if header is None:
            if cols[0] != HEADER or column not in cols or "MISC" not in cols:
                raise DataError(path, lineno, f"expected a HIPE header with TOKEN, {column} and MISC, "
                                              f"got {line[:60]!r}")
            header = cols
            tag_col, misc_col = cols.index(column), cols.index("MISC")
            continue
        if len(cols) != len(header):
            raise DataError(path, lineno, f"expected {len(header)} tab-separated columns, got {len(cols)}: "
                                          f"{line[:60]!r}")
        token, tag, misc = cols[0], cols[tag_col], cols[misc_col].split("|")
        if not token or token != token.strip():
            raise DataError(path, lineno, f"empty token or token with spaces: {token!r}")
        if tag == "_":
            raise DataError(path, lineno, f"column {column} is '_' (not annotated in this file)")
        if not TAG_RE.match(tag):
            raise DataError(path, lineno, f"invalid tag {tag!r} in {column} (expected O, B-X or I-X)")
        if lowercase:
            tag = tag[:2] + tag[2:].lower()
        if cut_pending and not (whole_mentions and tag.startswith("I-") and sentence
                                and sentence[-1][2][2:] == tag[2:]):
            flush()
        sentence.append((lineno, token, tag, not (no_space_after and "NoSpaceAfter" in misc)))
        cut_pending = "EndOfSentence" in misc
    flush()
    if header is None:
        raise DataError(path, 1, "no HIPE header line (TOKEN ...) found")
    if repaired:
        warnings.warn(f"{path}: {repaired} I- tags start a mention (no B- before them)", stacklevel=2)
    return docs
