"""Writers: JSONL, CoNLL (token<TAB>IOB2 tag), spaCy-style ``ents``, an HTML page
(samedge.data.html) and Label Studio tasks (samedge.data.labelstudio).

``format_documents`` renders a whole list; ``document_writer`` writes documents one at a time
(what ``samedge extract`` streams), with the opening and closing of the formats that have one.
"""

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


FORMATS = ("jsonl", "conll", "spacy", "html", "labelstudio")


def format_documents(docs, fmt: str, labels=None, meta: dict | None = None) -> str:
    """``docs`` in ``fmt``; ``labels`` (the legend's order) and ``meta`` (``model_version``, page
    details) matter to html and labelstudio only."""
    import json
    if fmt == "html":
        from .html import render_html
        return render_html(docs, labels, meta)
    if fmt == "labelstudio":
        from .labelstudio import labelstudio_json
        return labelstudio_json(docs, (meta or {}).get("model_version") or "samedge")
    if fmt == "jsonl":
        return "".join(dumps_document(d) + "\n" for d in docs)
    if fmt == "conll":
        return "".join("\n".join(to_conll_lines(d)) + "\n\n" for d in docs)
    if fmt == "spacy":
        return "".join(json.dumps(to_spacy(d), ensure_ascii=False) + "\n" for d in docs)
    raise UserError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")


def write_documents(path: str | Path, docs, fmt: str = "jsonl", labels=None, meta: dict | None = None) -> None:
    atomic_write_text(path, format_documents(docs, fmt, labels, meta))


class _Lines:
    """A format with no opening or closing: each document rendered on its own."""

    def __init__(self, out, render):
        self.out, self.render = out, render

    def start(self, labels=(), meta=None) -> None:
        pass

    def document(self, doc: dict) -> None:
        self.out.write(self.render(doc))

    def end(self) -> None:
        pass


def document_writer(out, fmt: str, render=None):
    """An object with ``start(labels, meta)``, ``document(doc)`` and ``end()`` writing ``fmt`` to
    ``out``; ``render(doc) -> str`` serves the line formats (default: ``format_documents``)."""
    if fmt == "html":
        from .html import HtmlPage
        return HtmlPage(out)
    if fmt == "labelstudio":
        from .labelstudio import LabelStudioWriter
        return LabelStudioWriter(out)
    return _Lines(out, render or (lambda doc: format_documents([doc], fmt)))
