"""TASTEset 2.0 reader (recipe ingredient lists, food entities; MIT).

Format: CSV ``ingredients,ingredients_entities``, one row per recipe (multi-line quoted
fields). ``ingredients`` holds newline-separated ingredient lines; ``ingredients_entities``
a JSON list of ``{"span": "[(start, end), ]", "type": ..., "entity": ...}`` with character
offsets into ``ingredients``; several pairs make a discontinuous mention.

Choices:

- One document per non-empty ingredient line (5374 of them; a mention never crosses a
  line), id ``<prefix>/r<recipe>-<line>`` so that a split can keep a recipe whole.
- Discontinuous mentions (107, e.g. FOOD "cheese ... Gouda" in "cheese (or Gouda)", PROCESS
  "chopped ... finely") become their separate contiguous pieces, each with the mention's
  label. Most pieces are mentions of that type on their own ("cheese", "Gouda",
  "chopped", "finely"); dropping the mention instead would teach that they are not.
  A piece that overlaps a contiguous mention is dropped (10 of them; see
  ``mention_pieces``), so the entities of a line never overlap.
- The offsets are the truth: the ``entity`` string is not compared (6 of 19457 differ
  from the slice only by curly against straight quotes).
- Each line's whitespace is tidied (runs to one space, ends stripped), offsets moved.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import DataError
from .spans import csv_rows, squeeze_spaces, to_document

HEADER = ["ingredients", "ingredients_entities"]
SPAN_LIST = re.compile(r"^\[(?:\(\d+, ?\d+\),? ?)+\]$")
PAIR = re.compile(r"\((\d+), ?(\d+)\)")


def parse_span(value) -> list[tuple[int, int]]:
    """``"[(8, 21), (37, 41), ]"`` -> ``[(8, 21), (37, 41)]``; ValueError if malformed."""
    if not isinstance(value, str) or not SPAN_LIST.match(value.strip()):
        raise ValueError(f"malformed span {value!r}")
    pairs = [(int(a), int(b)) for a, b in PAIR.findall(value)]
    if any(a >= b for a, b in pairs):
        raise ValueError(f"empty or reversed span {value!r}")
    return pairs


def read_tasteset(path: str | Path, id_prefix: str | None = None) -> list[dict]:
    """One document per ingredient line; a discontinuous mention -> its pieces."""
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    reader = csv_rows(path, HEADER)
    docs: list[dict] = []
    for recipe, row in enumerate(reader):
        lineno = reader.line_num  # the row's last line, as csv counts it
        if len(row) != 2:
            raise DataError(path, lineno, f"expected 2 fields, got {len(row)}")
        try:
            docs.extend(recipe_lines(row[0], json.loads(row[1]), f"{prefix}/r{recipe:04d}"))
        except (ValueError, TypeError, KeyError) as e:  # json.JSONDecodeError is a ValueError
            raise DataError(path, lineno, f"recipe {recipe}: {e}") from None
    if not docs:
        raise DataError(path, 1, "no recipes found")
    return docs


def recipe_lines(text: str, annotations: list, id_prefix: str) -> list[dict]:
    """Documents of one recipe's lines. Raises ValueError/KeyError/TypeError if malformed."""
    pieces = mention_pieces(text, annotations)
    docs, line_start = [], 0
    for j, line in enumerate(text.split("\n")):
        line_end = line_start + len(line)
        inside = [(s - line_start, e - line_start, lab) for s, e, lab in pieces
                  if line_start <= s and e <= line_end]
        if line.strip():
            squeezed, spans = squeeze_spaces(line, inside)
            docs.append(to_document(f"{id_prefix}-{j}", squeezed, spans))
        elif inside:
            raise ValueError(f"a mention on blank line {j}")
        line_start = line_end + 1
    placed = sum(len(d["entities"]) for d in docs)
    if placed != len(pieces):
        raise ValueError(f"{len(pieces) - placed} mention pieces cross a line break")
    return docs


def mention_pieces(text: str, annotations: list) -> list[tuple[int, int, str]]:
    """Contiguous mentions, plus the pieces of discontinuous ones that overlap none of them
    (10 pieces overlap one, e.g. "pudding" of "pudding ... chocolate" inside "vanilla
    pudding": the contiguous mention wins, so the entities stay flat)."""
    whole, pieces = [], []
    for a in annotations:
        label = a["type"]
        if not isinstance(label, str) or not label:
            raise ValueError(f"bad type {label!r}")
        spans = parse_span(a["span"])
        for start, end in spans:
            if end > len(text):
                raise ValueError(f"span ({start}, {end}) runs past the text ({len(text)} characters)")
        (whole if len(spans) == 1 else pieces).extend((s, e, label) for s, e in spans)
    kept = sorted(whole)
    for a, b in zip(kept, kept[1:]):
        if b[0] < a[1]:
            raise ValueError(f"mentions {text[a[0]:a[1]]!r} and {text[b[0]:b[1]]!r} overlap")
    for piece in pieces:
        if not any(piece[0] < e and s < piece[1] for s, e, _ in kept):
            kept.append(piece)
    return sorted(kept)


def count_annotations(path: str | Path) -> dict:
    """Upstream figures, before the split into lines and pieces::

        {"recipes": int, "lines": int, "mentions": int, "discontinuous": int,
         "pieces_kept": int (entities after the piece rule), "labels": {type: mentions}}
    """
    reader = csv_rows(Path(path), HEADER)
    out = {"recipes": 0, "lines": 0, "mentions": 0, "discontinuous": 0, "pieces_kept": 0, "labels": {}}
    for text, entities in reader:
        out["recipes"] += 1
        out["lines"] += sum(1 for line in text.split("\n") if line.strip())
        annotations = json.loads(entities)
        out["pieces_kept"] += len(mention_pieces(text, annotations))
        for a in annotations:
            out["mentions"] += 1
            out["discontinuous"] += len(parse_span(a["span"])) > 1
            out["labels"][a["type"]] = out["labels"].get(a["type"], 0) + 1
    return out
