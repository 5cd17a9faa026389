"""Snips NLU benchmark 2017 reader (voice-assistant queries with slots; CC0 1.0).

Format: ``{"<Intent>": [{"data": [{"text": "Is "}, {"text": "Babar", "entity": "movie_name"},
...]}, ...]}``: a query is its chunks' texts joined; a chunk with an ``entity`` key is a
slot mention of that type. Chunks carry their own spaces, some doubled, some newlines:
the text is tidied (each whitespace run one space, ends stripped) and a mention loses its
own outer spaces, offsets moved to match.

``PlayMusic/train_PlayMusic_full.json`` holds one emoji as a UTF-16 surrogate pair written
in UTF-8 bytes (CESU-8): it is decoded with ``surrogatepass`` and the pair joined into the
one character it stands for.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError, UserError
from .spans import squeeze_spaces, to_document


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8", errors="surrogatepass")
        # A surrogate pair -> the character it encodes (no-op for clean UTF-8).
        return text.encode("utf-16", errors="surrogatepass").decode("utf-16")
    except UnicodeError as e:
        line = data.count(b"\n", 0, getattr(e, "start", 0)) + 1
        raise DataError(path, line, f"invalid UTF-8 ({e.reason})") from None


def read_snips(path: str | Path, id_prefix: str | None = None) -> list[dict]:
    """One document per query, in file order, for every intent in the file."""
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not data:
        raise DataError(path, 1, "expected an object {intent: [queries]}")
    docs = []
    for intent, queries in data.items():
        if not isinstance(queries, list):
            raise DataError(path, 1, f"{intent}: expected a list of queries")
        for i, query in enumerate(queries):
            where = f"{intent} query {i}"
            chunks = query.get("data") if isinstance(query, dict) else None
            if not isinstance(chunks, list) or not chunks:
                raise DataError(path, None, f"{where}: expected {{\"data\": [chunks]}}")
            docs.append(_query_doc(path, f"{prefix}-{len(docs)}", chunks, where))
    return docs


def _query_doc(path: Path, doc_id: str, chunks: list, where: str) -> dict:
    parts, spans, pos = [], [], 0
    for j, chunk in enumerate(chunks):
        text = chunk.get("text") if isinstance(chunk, dict) else None
        if not isinstance(text, str):
            raise DataError(path, None, f"{where}: chunk {j} has no \"text\" string")
        if "entity" in chunk:
            if not isinstance(chunk["entity"], str) or not chunk["entity"]:
                raise DataError(path, None, f"{where}: chunk {j} has an empty or non-string \"entity\"")
            spans.append((pos, pos + len(text), chunk["entity"]))
        parts.append(text)
        pos += len(text)
    try:
        text, spans = squeeze_spaces("".join(parts), spans)
    except ValueError as e:
        raise DataError(path, None, f"{where}: {e}") from None
    return to_document(doc_id, text, spans)
