"""Writers: JSONL, CoNLL (token<TAB>IOB2 tag) and spaCy-style ``ents``."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..files import atomic_write_text
from .jsonl import dumps_document

TOKEN_RE = re.compile(r"\S+")


def to_conll_lines(doc: dict) -> list[str]:
    """Whitespace tokens with IOB2 tags. A token is tagged when it overlaps an entity."""
    lines = []
    spans = sorted(doc["entities"], key=lambda e: e["start"])
    prev_entity = None
    for m in TOKEN_RE.finditer(doc["text"]):
        tag, current = "O", None
        for ent in spans:
            if ent["start"] < m.end() and m.start() < ent["end"]:
                current = ent
                break
        if current is not None:
            tag = ("I-" if current is prev_entity else "B-") + current["label"].replace(" ", "_")
        prev_entity = current
        lines.append(f"{m.group()}\t{tag}")
    return lines


def to_spacy(doc: dict) -> dict:
    """spaCy's JSON shape: ``{"text", "ents": [{"start", "end", "label"}]}``."""
    return {"text": doc["text"],
            "ents": [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in doc["entities"]]}


def format_documents(docs, fmt: str) -> str:
    import json
    if fmt == "jsonl":
        return "".join(dumps_document(d) + "\n" for d in docs)
    if fmt == "conll":
        return "".join("\n".join(to_conll_lines(d)) + "\n\n" for d in docs)
    if fmt == "spacy":
        return "".join(json.dumps(to_spacy(d), ensure_ascii=False) + "\n" for d in docs)
    raise UserError(f"unknown format {fmt!r} (choose jsonl, conll or spacy)")


def write_documents(path: str | Path, docs, fmt: str = "jsonl") -> None:
    atomic_write_text(path, format_documents(docs, fmt))
