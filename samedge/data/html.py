"""One self-contained HTML page of extraction results: ``samedge extract --format html``.

Each document's text with its entities in ``<mark>`` elements, one colour per label and a
legend, and the document's extraction counts (chunks, parse failures, split retries, ...).
The page has no scripts and fetches nothing: inline CSS only, and a Content-Security-Policy
that forbids everything else. All text goes through ``html.escape``, so a document holding
``<script>`` or ``</mark>`` shows as text. Carriage returns are written as ``&#13;`` (an HTML
parser turns raw ones into line feeds), so the page's text is the document's text, character
for character, and every ``<mark>`` sits at the entity's offsets (``data-start``/``data-end``).

Colours: the i-th label of the legend (the bundle's label set, in its order; then any other
label in order of appearance) gets hue ``i * 137.508`` degrees (the golden angle), so
neighbouring labels differ strongly and the palette never runs out or repeats.
"""

from __future__ import annotations

import html

COUNT_NAMES = {  # the counts of a result (samedge.extract.records.new_counts), as the page names them
    "chunks": "chunks",
    "parse_failures": "parse failures",
    "dropped_labels": "dropped labels",
    "not_found": "mentions not found",
    "overlaps": "overlaps",
    "split_retries": "split retries",
    "unfinished_answers": "unfinished answers",
}
PROBLEMS = set(COUNT_NAMES) - {"chunks"}  # shown in red when not zero

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:60rem;
padding:1rem 1.5rem;color:#1b1b1b;background:#fff}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:0 0 .3rem;word-break:break-all}
.meta{color:#555;margin:.2rem 0 .6rem}
.legend{list-style:none;padding:0;margin:.4rem 0 1rem;display:flex;flex-wrap:wrap;gap:.35rem}
.legend li{padding:.05rem .5rem;border-radius:.3rem;border:1px solid rgba(0,0,0,.15)}
.doc{border-top:1px solid #ddd;padding:.8rem 0}
.counts{list-style:none;padding:0;margin:0 0 .4rem;display:flex;flex-wrap:wrap;gap:.2rem .9rem;
color:#555;font-size:.85rem}
.counts b{color:#1b1b1b}.counts .warn b{color:#b00020}
.note{color:#b00020;font-size:.85rem;margin:0 0 .4rem}
.text{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;border:1px solid #eee;
border-radius:.3rem;padding:.6rem .8rem;margin:0}
mark{border-radius:.2rem;padding:0 .1rem;color:inherit}
mark::after{content:attr(data-label);font-size:.68em;font-weight:600;margin-left:.25em;
vertical-align:.1em;opacity:.75}
footer{border-top:1px solid #ddd;color:#555;padding-top:.6rem;font-size:.85rem}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"


def label_colour(index: int) -> str:
    return f"hsl({index * 137.508 % 360:.1f},85%,78%)"


def text_escape(s: str) -> str:
    """``html.escape`` plus CR kept as a character reference (a raw one would become LF)."""
    return html.escape(s, quote=True).replace("\r", "&#13;")


class HtmlPage:
    """Writes the page piece by piece: ``start(labels, meta)``, ``document(doc)`` per document,
    ``end()``. Labels met in documents but not given to ``start`` get the next colours."""

    def __init__(self, out):
        self.out = out
        self.classes: dict[str, str] = {}
        self.documents = 0
        self.entities = 0
        self._started = False

    def _class(self, label: str) -> str:
        if label not in self.classes:
            self.classes[label] = f"l{len(self.classes)}"
            if self._started:  # a label the legend did not list: its style, inline
                self.out.write(f"<style>.{self.classes[label]}{{background:{label_colour(len(self.classes) - 1)}}}"
                               "</style>\n")
        return self.classes[label]

    def start(self, labels=(), meta: dict | None = None) -> None:
        meta = meta or {}
        for label in labels:
            self._class(label)
        self._started = True
        styles = "".join(f".{c}{{background:{label_colour(i)}}}" for i, c in enumerate(self.classes.values()))
        title = "samedge entities" + (f": {meta['title']}" if meta.get("title") else "")
        w = self.out.write
        w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        w(f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n")
        w("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        w(f"<title>{text_escape(title)}</title>\n<style>{CSS}{styles}</style>\n</head>\n<body>\n")
        w(f"<header>\n<h1>{text_escape(title)}</h1>\n")
        details = [f"{k} {v}" for k, v in meta.items() if k != "title" and v]
        if details:
            w(f"<p class=\"meta\">{text_escape(' · '.join(details))}</p>\n")
        w("<ul class=\"legend\">" + "".join(f"<li class=\"{c}\">{text_escape(label)}</li>"
                                           for label, c in self.classes.items()) + "</ul>\n</header>\n<main>\n")

    def document(self, doc: dict) -> None:
        text = doc["text"]
        w = self.out.write
        self.documents += 1
        w(f"<section class=\"doc\" id=\"doc-{self.documents}\" data-id=\"{text_escape(str(doc['id']))}\">\n")
        w(f"<h2>{text_escape(str(doc['id']))}</h2>\n")
        counts = doc.get("counts") or {}
        items = [f"<li>entities <b>{len(doc['entities'])}</b></li>"]
        for key, value in counts.items():
            warn = " class=\"warn\"" if key in PROBLEMS and value else ""
            items.append(f"<li{warn}>{text_escape(COUNT_NAMES.get(key, key))} <b>{text_escape(str(value))}</b></li>")
        pieces, cursor, hidden = [], 0, 0
        for e in sorted(doc["entities"], key=lambda e: (e["start"], e["end"])):
            if e["start"] < cursor:  # marks cannot nest across each other: say so instead of hiding it
                hidden += 1
                continue
            cls = self._class(e["label"])
            pieces.append(text_escape(text[cursor:e["start"]]))
            pieces.append(f"<mark class=\"{cls}\" data-label=\"{text_escape(e['label'])}\" "
                          f"data-start=\"{e['start']}\" data-end=\"{e['end']}\">"
                          f"{text_escape(text[e['start']:e['end']])}</mark>")
            cursor = e["end"]
            self.entities += 1
        pieces.append(text_escape(text[cursor:]))
        if hidden:
            items.append(f"<li class=\"warn\">overlapping, not shown <b>{hidden}</b></li>")
        w("<ul class=\"counts\">" + "".join(items) + "</ul>\n")
        if doc.get("offsets"):
            w(f"<p class=\"note\">offsets: {text_escape(str(doc['offsets']))}</p>\n")
        w("<div class=\"text\">" + "".join(pieces) + "</div>\n</section>\n")

    def end(self) -> None:
        summary = f"{_plural(self.documents, 'document')}, {_plural(self.entities, 'entity', 'entities')}"
        self.out.write(f"</main>\n<footer>{summary}</footer>\n</body>\n</html>\n")


def labels_in_order(docs) -> list[str]:
    seen: dict[str, None] = {}
    for d in docs:
        for e in d["entities"]:
            seen.setdefault(e["label"], None)
    return list(seen)


def render_html(docs, labels=None, meta: dict | None = None) -> str:
    """The whole page for a list of documents (the legend: ``labels``, else the labels found)."""
    import io

    docs = list(docs)
    buf = io.StringIO()
    page = HtmlPage(buf)
    page.start(labels if labels is not None else labels_in_order(docs), meta)
    for d in docs:
        page.document(d)
    page.end()
    return buf.getvalue()


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
