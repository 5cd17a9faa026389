"""CoNLL-style readers: BIO/IOB2 and IOB1, token-first or tag-first, tab or space.

Tokens of a sentence are joined with single spaces; entity offsets are exact
character offsets into that text. An I- tag that does not continue an entity of
the same type starts a new one: under IOB1 that is the rule, under IOB2 it is a
repair, counted in ``ReadStats.repaired`` and reported as a warning.

Whitespace around a token is dropped (BTC has emoji tokens with a trailing
space). An empty token tagged O carries no text and is dropped with a warning (a
sentence of only such tokens stays, as an empty text, so counts match the
file); an empty token inside an entity is an error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .decode import read_lines

TAG_RE = re.compile(r"^(?:O|[BIES]-\S+)$")
DOCSTART = "-DOCSTART-"
SNIFF_LINES = 2000


@dataclass
class ReadStats:
    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    repaired: int = 0
    repaired_lines: list = field(default_factory=list)
    empty_tokens: int = 0

    def add(self, other: "ReadStats") -> None:
        self.sentences += other.sentences
        self.tokens += other.tokens
        self.entities += other.entities
        self.repaired += other.repaired
        self.repaired_lines = (self.repaired_lines + other.repaired_lines)[:10]
        self.empty_tokens += other.empty_tokens


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


def _rows(path: Path, lines: list[str]) -> list[tuple[int, list[str] | None]]:
    """(lineno, columns), or (lineno, None) for a sentence break. Checks the column count."""
    rows = []
    width = first_line = None
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            rows.append((lineno, None))
            continue
        cols = _split(line)
        if DOCSTART in (cols[0].strip(), cols[-1].strip()):
            rows.append((lineno, None))
            continue
        if len(cols) < 2:
            raise DataError(path, lineno, f"expected a token and a tag, got {stripped[:60]!r}")
        if width is None:
            width, first_line = len(cols), lineno
        elif len(cols) != width:
            raise DataError(path, lineno, f"expected {width} columns (as on line {first_line}), "
                                          f"got {len(cols)}: {stripped[:60]!r}")
        rows.append((lineno, cols))
    return rows


def read_conll(path: str | Path, scheme: str = "auto", tag_column: str = "auto",
               id_prefix: str | None = None, stats: ReadStats | None = None) -> list[dict]:
    """Read a CoNLL-style file into internal documents (one per sentence).

    ``scheme``: 'iob2', 'iob1' or 'auto'; ``tag_column``: 'first', 'last' or 'auto'.
    """
    path = Path(path)
    if scheme not in ("auto", "iob1", "iob2"):
        raise ValueError(f"unknown scheme {scheme!r}")
    rows = _rows(path, read_lines(path))
    data_rows = [c for _, c in rows if c is not None]
    if not data_rows:
        raise DataError(path, 1, "no tokens found")
    col = {"auto": None, "first": 0, "last": -1}[tag_column]
    if col is None:
        col = detect_tag_column(data_rows[:SNIFF_LINES])
    tok_col = -1 if col == 0 else 0
    if scheme == "auto":
        scheme = detect_scheme(c[col].strip() for c in data_rows)
    own = ReadStats()  # this file's figures; added to ``stats`` at the end
    prefix = id_prefix if id_prefix is not None else path.stem
    docs: list[dict] = []
    sentence: list[tuple[int, str, str]] = []

    in_sentence = False  # a sentence of only empty tokens still counts (as an empty text)

    def flush():
        if in_sentence:
            docs.append(_sentence_to_doc(sentence, f"{prefix}-{len(docs)}", scheme, path, own))
            sentence.clear()

    for lineno, cols in rows:
        if cols is None:
            flush()
            in_sentence = False
            continue
        in_sentence = True
        tag, token = cols[col].strip(), cols[tok_col].strip()
        if not TAG_RE.match(tag):
            raise DataError(path, lineno, f"invalid tag {tag!r} (expected O, B-X or I-X; "
                                          f"is the tag column {'first' if col == 0 else 'last'}?)")
        if not token:
            if tag != "O":
                raise DataError(path, lineno, f"empty token tagged {tag}")
            own.empty_tokens += 1
            continue
        sentence.append((lineno, token, tag))
    flush()
    if own.repaired and scheme == "iob2":
        warnings.warn(f"{path}: repaired {own.repaired} I- tags that followed O or another type "
                      f"(first at {own.repaired_lines[0]})", stacklevel=2)
    if own.empty_tokens:
        warnings.warn(f"{path}: dropped {own.empty_tokens} empty tokens tagged O", stacklevel=2)
    if stats is not None:
        stats.add(own)
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
            if prefix in "IE" and scheme == "iob2":
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
