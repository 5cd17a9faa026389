"""`samedge extract --format html`: one self-contained page, every text escaped, one colour per
label; rendered by headless Chromium, its highlighted spans are exactly the JSONL entities."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from samedge.extract.api import run_extract
from samedge.data.html import label_colour, render_html
from samedge.data.labels import make_label
from samedge.data.writers import format_documents
from samedge.extract import Extractor
from tests.bundle_fixtures import FOUND_SENTENCES, GoldEngine, cli_env, real_bundle, run_cli  # noqa: F401
from tests.timeouts import generous  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = 'Ann Lee wrote <script>alert("x")</script> and </mark><b>bold</b> & "quotes" in Paris.\r\nBob 😀 left.'


class Page(HTMLParser):
    """The documents of a page as the browser holds them: per section, its text (the text div's
    character data) and its marks as (start, end, label, text) computed from the text's position."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.docs, self.tags, self.in_text, self.mark = [], [], 0, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.docs.append({"id": attrs["data-id"], "text": "", "marks": [], "counts": {}})
        elif tag == "div" and attrs.get("class") == "text":
            self.in_text = len(self.tags)
        elif tag == "mark" and self.in_text:
            self.mark = {"start": len(self.docs[-1]["text"]), "label": attrs["data-label"], "class": attrs["class"],
                         "data": (int(attrs["data-start"]), int(attrs["data-end"]))}

    def handle_endtag(self, tag):
        if tag == "mark" and self.mark is not None:
            m, text = self.mark, self.docs[-1]["text"]
            self.docs[-1]["marks"].append({"start": m["start"], "end": len(text), "label": m["label"],
                                           "text": text[m["start"]:], "class": m["class"], "data": m["data"]})
            self.mark = None
        if self.in_text == len(self.tags):
            self.in_text = 0
        self.tags.pop()

    def handle_data(self, data):
        if self.in_text:
            self.docs[-1]["text"] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def spans(doc):
    return [(e["start"], e["end"], e["label"], e["text"]) for e in doc["entities"]]


def mark_spans(doc):
    return [(m["start"], m["end"], m["label"], m["text"]) for m in doc["marks"]]


LABELS = [make_label("person"), make_label("location"), make_label("legal case")]


def gold_extractor():
    return Extractor(GoldEngine({"Ann Lee": "person", "Paris": "location", "Bob": "person",
                                 "<script>": "legal case"}, words=False), LABELS)


def test_page_escapes_everything_and_marks_exact_offsets():
    doc = gold_extractor().extract(HOSTILE, "evil <id> & co")
    assert ("<script>" in [e["text"] for e in doc["entities"]])
    html = render_html([doc], ["person", "location", "legal case"])
    assert "<script" not in html.replace("&lt;script", "")  # no script element, only escaped text
    assert "\r" not in html and "&#13;" in html
    page = parse(html)
    [shown] = page.docs
    assert shown["id"] == "evil <id> & co"
    assert shown["text"] == HOSTILE  # character for character, CR included
    assert mark_spans(shown) == spans(doc)
    assert all(m["data"] == (m["start"], m["end"]) for m in shown["marks"])


def test_one_colour_per_label_deterministic():
    docs = [gold_extractor().extract(HOSTILE, "a"), gold_extractor().extract("Paris, then Ann Lee.", "b")]
    html = render_html(docs, ["person", "location", "legal case"])
    classes = {}
    for doc in parse(html).docs:
        for m in doc["marks"]:
            assert classes.setdefault(m["label"], m["class"]) == m["class"]
    assert len(set(classes.values())) == len(classes) == 3
    assert len({label_colour(i) for i in range(40)}) == 40  # the palette never repeats
    assert render_html(docs, ["person", "location", "legal case"]) == html
    # Labels found but not in the legend get the next colours, with their styles.
    extra = render_html([{"id": "x", "text": "Zed", "entities": [{"start": 0, "end": 3, "label": "alien",
                                                                   "text": "Zed"}]}], ["person"])
    assert ".l1{background:" in extra and 'class="l1" data-label="alien"' in extra


def test_counts_and_no_external_resources():
    doc = gold_extractor().extract("Ann Lee in Paris.", "d")
    doc["counts"]["parse_failures"] = 2
    html = format_documents([doc], "html", ["person", "location", "legal case"])
    assert "parse failures <b>2</b>" in html and "split retries <b>0</b>" in html
    assert "default-src 'none'" in html
    for forbidden in ("<script", "<link", "<img", "src=", "href=", "url(", "@import"):
        assert forbidden not in html, forbidden


def run_chromium(html_path: Path, png: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1000,900", f"--screenshot={png}", "--dump-dom", html_path.as_uri()],
            capture_output=True, timeout=generous(120), env=dict(os.environ, HOME=profile))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.decode("utf-8")


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); "
                                                             "the HTML page is not rendered in a browser")


@needs_chromium
def test_chromium_renders_the_marks_of_the_jsonl_output(tmp_path):
    (tmp_path / "a.txt").write_text(HOSTILE, newline="")
    (tmp_path / "b.txt").write_text("Paris, then Ann Lee.\n")
    page, jsonl = tmp_path / "page.html", tmp_path / "docs.jsonl"
    inputs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    run_extract(inputs, fmt="html", output=page, extractor=gold_extractor(), progress=False)
    run_extract(inputs, fmt="jsonl", output=jsonl, extractor=gold_extractor(), progress=False)
    expected = [json.loads(line) for line in jsonl.read_text().splitlines()]
    dom = run_chromium(page, tmp_path / "shot.png")
    shown = parse(dom).docs
    assert "alert" not in "".join(m["text"] for d in shown for m in d["marks"])
    assert [d["id"] for d in shown] == [d["id"] for d in expected]
    assert [d["text"] for d in shown] == [d["text"] for d in expected]
    assert [mark_spans(d) for d in shown] == [spans(d) for d in expected]
    assert "<script>" in [m["text"] for m in shown[0]["marks"]]
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
@pytest.mark.real
def test_real_extract_html_in_chromium(real_bundle, cli_env, tmp_path):
    inputs = tmp_path / "in.jsonl"
    texts = FOUND_SENTENCES + ["A </mark> and <script>alert(1)</script> in Syria."]
    inputs.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    page, jsonl = tmp_path / "page.html", tmp_path / "docs.jsonl"
    for fmt, out in (("html", page), ("jsonl", jsonl)):
        proc = run_cli(["extract", inputs, "--bundle", real_bundle, "--threads", "1", "--format", fmt, "-o", out],
                       cli_env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    expected = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sum(len(d["entities"]) for d in expected) > 0
    png = tmp_path / "shot.png"
    shown = parse(run_chromium(page, png)).docs
    assert [(d["id"], d["text"]) for d in shown] == [(d["id"], d["text"]) for d in expected]
    assert [mark_spans(d) for d in shown] == [spans(d) for d in expected]
    html = page.read_text()
    for doc in expected:  # every count of every document is on the page
        for key in ("parse_failures", "split_retries"):
            assert key in doc["counts"]
    assert html.count("parse failures <b>") == html.count("split retries <b>") == len(expected)
    assert "legal/" in html  # the model version in the header
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
