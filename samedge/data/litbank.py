"""LitBank entity TSV reader (100 English novels, nested ACE-style mentions).

Format: ``token<TAB>L1<TAB>L2<TAB>L3<TAB>L4<TAB>`` (10 files carry one more, all-O layer),
IOB2 per layer, a blank line between sentences. L1 holds the innermost mentions and each
further layer the mentions around them: "Mr." is PER in L1, "Mr. Bennet" PER in L2.

Layer policy (``layers="outermost"``, the default): keep every mention that no other
mention (of any layer) contains. A flat tagger then learns whole phrases, "Sir Walter
Elliot" and "Kellynch Hall", not the title "Sir" inside a name, and no mention of any
layer is lost unless it sits inside another one. L1 alone would teach the fragments.
``layers="all"`` returns every layer's mentions, nested, as upstream counts them.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .decode import read_lines
from .spans import TAG_RE, iob_spans, join_tokens, to_document, token_spans_to_chars

LAYER_POLICIES = ("outermost", "all")


def read_litbank(path: str | Path, id_prefix: str | None = None, layers: str = "outermost") -> list[dict]:
    """One document per sentence; tokens joined with single spaces."""
    if layers not in LAYER_POLICIES:
        raise ValueError(f"unknown layer policy {layers!r}; one of {LAYER_POLICIES}")
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    docs: list[dict] = []
    tokens: list[str] = []
    columns: list[list[str]] = []  # one tag list per layer
    width = None

    def flush():
        if not tokens:
            return
        spans = [s for tags in columns for s in iob_spans(tags)]
        if layers == "outermost":
            spans = outermost(spans)
        text, offsets = join_tokens(tokens)
        docs.append(to_document(f"{prefix}-{len(docs)}", text, token_spans_to_chars(spans, offsets)))
        tokens.clear()
        columns.clear()

    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            flush()
            continue
        cols = line.split("\t")
        if cols[-1] == "":
            cols.pop()  # the trailing tab
        if width is None:
            width = len(cols)
        if len(cols) != width or width < 2:
            raise DataError(path, lineno, f"expected a token and {width - 1} layer tags, got "
                                          f"{len(cols)} fields: {line[:60]!r}")
        token, tags = cols[0], cols[1:]
        if not token or token != token.strip():
            raise DataError(path, lineno, f"empty token or token with spaces: {token!r}")
        bad = [t for t in tags if not TAG_RE.match(t)]
        if bad:
            raise DataError(path, lineno, f"invalid tag {bad[0]!r} (expected O, B-X or I-X)")
        if not columns:
            columns.extend([] for _ in tags)
        for layer, tag in zip(columns, tags):
            layer.append(tag)
        tokens.append(token)
    flush()
    if not docs:
        raise DataError(path, 1, "no tokens found")
    return docs


def outermost(spans) -> list[tuple[int, int, str]]:
    """Spans that no other span contains; of two identical extents the outer layer's
    (the later one) wins."""
    unique = {}
    for s, e, label in spans:
        unique[(s, e)] = label
    keep = []
    for (s, e), label in unique.items():
        if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2 in unique):
            keep.append((s, e, label))
    return sorted(keep)
