"""Pick a reader from a file's name: JSONL with spans, a Label Studio JSON export, or CoNLL-style BIO."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .conll import read_conll
from .jsonl import read_jsonl
from .labelstudio import looks_like_json_array, read_labelstudio

JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}


def load_documents(path, need_entities: bool = False) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() in JSONL_SUFFIXES:
        # A JSON array is a Label Studio export (JSONL lines are objects, never arrays).
        if path.is_file() and looks_like_json_array(path):
            return read_labelstudio(path, need_entities=need_entities)
        return read_jsonl(path, need_entities=need_entities)
    return read_conll(path)
