"""What `samedge extract` reads: files, directories, stdin and JSONL, one document at a time.

Each input yields either a document ``(id, text)`` or a failure ``(id, reason)``
so that one bad file never stops a run: the good ones are processed and the
bad ones are listed. Text is decoded strictly as UTF-8 (a BOM is allowed);
with ``errors="replace"`` invalid bytes become U+FFFD and offsets refer to the
decoded text.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..data.decode import decode_bytes, read_bytes
from ..errors import UserError

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True)
class Failure:
    id: str
    reason: str


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_text(text: str, where: str, errors: str) -> str:
    """JSON can carry lone surrogates (``"\\ud800"``), which are not Unicode text: refuse them
    (or, with errors='replace', replace each by U+FFFD, which keeps every offset)."""
    m = _SURROGATE.search(text)
    if m is None:
        return text
    if errors == "replace":
        return _SURROGATE.sub("\ufffd", text)
    raise UserError(f"{where}: 'text' holds a lone surrogate (U+{ord(m.group()):04X}) at character {m.start()}, "
                    f"which is not valid Unicode")


def documents_of(name: str, data: bytes, errors: str, jsonl: bool):
    """The documents of one input, decoded now (so that the caller can drop the bytes at once)."""
    text = decode_bytes(data, name, errors)
    if not jsonl:
        if not text:
            raise UserError(f"{name}: file is empty")
        return [Document(name, text)]
    return _jsonl_documents(name, text, errors)


def _jsonl_documents(name: str, text: str, errors: str):
    # Split on line feeds only: str.splitlines() would also cut at U+2028, U+0085, ... which
    # JSON allows unescaped inside strings.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield Failure(f"{name}:{lineno}", f"{name}:{lineno}: invalid JSON ({e.msg})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            yield Failure(f"{name}:{lineno}", f"{name}:{lineno}: expected an object with a string 'text'")
            continue
        try:
            doc_text = _valid_text(obj["text"], f"{name}:{lineno}", errors)
        except UserError as e:
            yield Failure(f"{name}:{lineno}", str(e))
            continue
        doc_id = _SURROGATE.sub("\ufffd", str(obj.get("id", f"{name}:{lineno}")))
        yield Document(doc_id, doc_text)


def expand_paths(paths, glob: str):
    for raw in paths:
        if raw == "-":
            yield "-"
            continue
        path = Path(raw)
        try:
            is_dir = path.is_dir()
        except OSError as e:  # e.g. a name too long for the file system
            yield Failure(str(path), f"{path}: cannot read ({e.strerror or e})")
            continue
        if is_dir:
            found = sorted(p for p in path.rglob(glob) if p.is_file())
            if not found:
                yield Failure(str(path), f"{path}: no files match {glob!r}")
            yield from found
        else:
            yield path


def iter_documents(paths, *, glob: str = "*", errors: str = "strict", jsonl: bool | None = None):
    """Documents and Failures from ``paths`` (files, directories searched recursively, or '-')."""
    if errors not in ("strict", "replace"):
        raise UserError(f"--errors must be strict or replace, not {errors!r}")
    for item in expand_paths(paths, glob):
        if isinstance(item, Failure):
            yield item
            continue
        name = "<stdin>" if item == "-" else str(item)
        as_jsonl = jsonl if jsonl is not None else (item != "-" and item.suffix.lower() in JSONL_SUFFIXES)
        try:
            data = sys.stdin.buffer.read() if item == "-" else read_bytes(item)
            documents = documents_of(name, data, errors, as_jsonl)
        except UserError as e:
            yield Failure(name, str(e))
            continue
        del data  # a big file's bytes are not kept beside its text while it is extracted
        yield from documents
