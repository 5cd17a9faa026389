"""CoNLL-style readers: BIO/IOB2 and IOB1, token-first or tag-first, tab or space.

Tokens of a sentence are joined with single spaces; entity offsets are exact
character offsets into that text. An I- tag that does not continue an entity of
the same type starts a new one: under IOB1 that is the rule, under IOB2 it is a
repair, counted in ``ReadStats.repaired`` and reported as a warning.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .decode import read_lines

TAG_RE = re.compile(r"^(?:O|[BIES]-\S+)$")
SNIFF_LINES = 2000


@dataclass
class ReadStats:
    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    repaired: int = 0
    repaired_lines: list = field(default_factory=list)


def _split(line: str) -> list[str]:
    return line.split("\t") if "\t" in line else line.split()


def detect_tag_column(rows: list[list[str]]) -> int:
    """0 if the tag comes first (MIT .bio), -1 if it comes last."""
    first = sum(bool(TAG_RE.match(r[0])) for r in rows)
    last = sum(bool(TAG_RE.match(r[-1])) for r in rows)
    return 0 if first > last else -1


def detect_scheme(tags) -> str:
    """'iob1' when a file has I- tags but never B- tags, else 'iob2'."""
    has_b = any(t.startswith("B-") for t in tags)
    return "iob2" if has_b else "iob1"


def read_conll(path: str | Path, scheme: str = "auto", tag_column: str = "auto",
               id_prefix: str | None = None, stats: ReadStats | None = None) -> list[dict]:
    """Read a CoNLL-style file into internal documents (one per sentence)."""
    path = Path(path)
    lines = read_lines(path)
    rows = []  # (lineno, columns) or (lineno, None) for a sentence break
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("-DOCSTART-"):
            rows.append((lineno, None))
            continue
        cols = _split(line.rstrip())
        if len(cols) < 2:
            raise DataError(path, lineno, f"expected a token and a tag, got {stripped[:60]!r}")
        rows.append((lineno, cols))
    data_rows = [c for _, c in rows if c is not None]
    if not data_rows:
        raise DataError(path, 0, "no tokens found")
    col = {"auto": None, "first": 0, "last": -1}[tag_column]
    if col is None:
        col = detect_tag_column(data_rows[:SNIFF_LINES])
    tok_col = -1 if col == 0 else 0
    if scheme == "auto":
        scheme = detect_scheme(c[col] for c in data_rows)
    stats = stats if stats is not None else ReadStats()
    prefix = id_prefix if id_prefix is not None else path.stem
    docs: list[dict] = []
    sentence: list[tuple[int, str, str]] = []

    def flush():
        if sentence:
            docs.append(_sentence_to_doc(sentence, f"{prefix}-{len(docs)}", scheme, path, stats))
            sentence.clear()

    for lineno, cols in rows:
        if cols is None:
            flush()
            continue
        tag = cols[col]
        if not TAG_RE.match(tag):
            raise DataError(path, lineno, f"invalid tag {tag!r} (expected O, B-X or I-X)")
        sentence.append((lineno, cols[tok_col], tag))
    flush()
    if stats.repaired and scheme == "iob2":
        warnings.warn(f"{path}: repaired {stats.repaired} I- tags that followed O or another "
                      f"type (first at line {stats.repaired_lines[0]})", stacklevel=2)
    return docs


def _sentence_to_doc(sentence, doc_id, scheme, path, stats: ReadStats) -> dict:
    parts, entities = [], []
    offset = 0
    current = None  # [start, end, label]
    prev_type = None
    for lineno, token, tag in sentence:
        start = offset + (1 if parts else 0)
        end = start + len(token)
        parts.append(token)
        offset = end
        if tag == "O":
            current, prev_type = None, None
            continue
        prefix, label = tag[0], tag[2:]
        if prefix in "BS" or prev_type != label:
            if prefix == "I" and scheme == "iob2":
                stats.repaired += 1
                if len(stats.repaired_lines) < 10:
                    stats.repaired_lines.append(f"{path}:{lineno}")
            current = [start, end, label]
            entities.append(current)
        else:
            current[1] = end
        prev_type = None if prefix in "ES" else label
    text = " ".join(parts)
    stats.sentences += 1
    stats.tokens += len(parts)
    stats.entities += len(entities)
    return {"id": doc_id, "text": text,
            "entities": [{"start": s, "end": e, "label": lab, "text": text[s:e]}
                         for s, e, lab in entities]}
