"""JSONL documents with character spans: ``{"id", "text", "entities": [...]}`` per line.

spaCy-style lines (``{"text", "ents": [...]}``) are accepted as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..files import atomic_write_text
from .decode import read_lines


def validate_document(doc, path="<input>", lineno=0, need_entities=False) -> dict:
    """Check one document; return it normalised (entities sorted, ``text`` filled in)."""
    if not isinstance(doc, dict):
        raise DataError(path, lineno, "expected a JSON object")
    text = doc.get("text")
    if not isinstance(text, str):
        raise DataError(path, lineno, "missing string field 'text'")
    doc_id = doc.get("id", f"{Path(str(path)).stem}-{lineno}")
    # spaCy-style ``ents`` (as ``--format spacy`` writes) are read as entities too.
    raw = doc.get("entities", doc.get("ents"))
    if raw is None:
        if need_entities:
            raise DataError(path, lineno, "missing field 'entities'")
        raw = []
    if not isinstance(raw, list):
        raise DataError(path, lineno, "'entities' must be a list")
    entities = []
    for ent in raw:
        try:
            start, end, label = int(ent["start"]), int(ent["end"]), str(ent["label"])
        except (KeyError, TypeError, ValueError):
            raise DataError(path, lineno, f"entity needs integer start/end and a label: {ent!r}") from None
        if not 0 <= start < end <= len(text):
            raise DataError(path, lineno, f"entity span [{start}, {end}) outside the text "
                                          f"(length {len(text)})")
        if "text" in ent and ent["text"] != text[start:end]:
            raise DataError(path, lineno, f"entity text {ent['text']!r} != text[{start}:{end}] "
                                          f"{text[start:end]!r}")
        entities.append({"start": start, "end": end, "label": label, "text": text[start:end]})
    entities.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    out = {k: v for k, v in doc.items() if k != "ents"}
    out.update(id=str(doc_id), text=text, entities=entities)
    return out


def read_jsonl(path: str | Path, need_entities: bool = False) -> list[dict]:
    path = Path(path)
    docs = []
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, lineno, f"invalid JSON: {e.msg}") from None
        docs.append(validate_document(obj, path, lineno, need_entities))
    if not docs:
        raise DataError(path, 0, "no documents found")
    return docs


def dumps_document(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=False)


def write_jsonl(path: str | Path, docs) -> None:
    atomic_write_text(path, "".join(dumps_document(d) + "\n" for d in docs))
