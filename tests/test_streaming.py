"""Long documents stream: the engine gets at most ``extract.WINDOW`` chunks at a time, a long
document's entities are written as they are found (``Extractor.stream``), and the streamed JSONL
record is byte for byte the one the whole-document path writes. Fake engines, no model."""

from __future__ import annotations

import json
import random

import pytest

import samedge.extract.api as api
import samedge.extract.extractor as extract
from samedge.extract.api import run_extract
from samedge.data.labels import make_label
from samedge.extract import Extractor
from tests.bundle_fixtures import GoldEngine, ScriptedEngine, check_spans

LABELS = [make_label("person"), make_label("location")]
GOLD = {"Ann Lee": "person", "Bob": "person", "Paris": "location", "東京": "location"}
PIECES = ["Ann Lee met Bob in Paris.", "Nobody here.", 'A "quoted" \\ backslash, and Bob.', "東京 😀 is far.",
          "Line\u2028sep and\ttab.", "Paris\n\nagain, said Ann Lee!", "x" * 30]


def document(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(PIECES) for _ in range(n))


def test_stream_gives_what_extract_gives_in_windows(monkeypatch):
    monkeypatch.setattr(extract, "WINDOW", 3)
    text = document(1, 120)
    engine = GoldEngine(GOLD)
    ex = Extractor(engine, LABELS, chunk_tokens=12)
    whole = ex.extract(text)
    assert max(len(c) for c in engine.calls) == 3 and len(engine.calls) > 10  # windows, not one call
    engine.calls.clear()
    counts: dict = {}
    streamed = list(ex.stream(text, counts))
    assert max(len(c) for c in engine.calls) == 3
    assert streamed == whole["entities"] and counts == whole["counts"]
    assert len(streamed) > 50
    check_spans({"text": text, "entities": streamed})


def test_stream_counts_split_retries_like_extract(monkeypatch):
    """Answers cut while listing entities: the chunk is halved and retried inside its window."""
    monkeypatch.setattr(extract, "WINDOW", 2)

    def script(chunk):
        lines = [f"person: {w}" for w in chunk.split() if w.istitle()]
        return "\n".join(lines[:2]), len(lines) <= 2

    text = " ".join(f"Then Ann{i} met Bob{i} and Cy{i}." for i in range(30))
    ex = Extractor(ScriptedEngine(script), LABELS, chunk_tokens=40)
    whole = ex.extract(text)
    counts: dict = {}
    assert list(ex.stream(text, counts)) == whole["entities"]
    assert counts == whole["counts"] and counts["split_retries"] > 0


def write_inputs(root, big_chars: int):
    root.mkdir()
    (root / "a_small.txt").write_text("Ann Lee met Bob.", encoding="utf-8")
    (root / "b_big.txt").write_text(document(2, big_chars // 20)[:big_chars], encoding="utf-8")
    (root / "c_bad.txt").write_bytes(b"Bob \xff")
    (root / "d_small.txt").write_text("Paris in spring.", encoding="utf-8")
    (root / "e_big.txt").write_bytes(document(3, big_chars // 20)[:big_chars].encode() + b" \xfe Bob.")
    return root


@pytest.mark.parametrize("errors", ["strict", "replace"])
def test_streamed_jsonl_is_byte_identical_to_the_whole_record(tmp_path, monkeypatch, errors):
    src = write_inputs(tmp_path / "in", 3000)
    outs = {}
    for mode, limit in (("whole", 10 ** 12), ("streamed", 1000)):
        monkeypatch.setattr(api, "STREAM_CHARS", limit)
        monkeypatch.setattr(api, "TEXT_PIECE", 7)  # pieces of the text's JSON join exactly, escapes and all
        monkeypatch.setattr(extract, "WINDOW", 4)
        engine = GoldEngine(GOLD)
        outs[mode] = tmp_path / f"{mode}.jsonl"
        summary = run_extract([str(src)], extractor=Extractor(engine, LABELS, chunk_tokens=12), output=str(outs[mode]),
                              errors=errors, progress=False)
        assert summary["documents"] == (5 if errors == "replace" else 3)
        assert len(summary["failures"]) == (0 if errors == "replace" else 2)
    assert outs["streamed"].read_bytes() == outs["whole"].read_bytes()
    docs = [json.loads(line) for line in outs["whole"].read_text(encoding="utf-8").split("\n") if line]
    expected = ["a_small.txt", "b_big.txt", "d_small.txt"] if errors == "strict" else \
        ["a_small.txt", "b_big.txt", "c_bad.txt", "d_small.txt", "e_big.txt"]
    assert [d["id"].rsplit("/", 1)[1] for d in docs] == expected
    for d in docs:
        check_spans(d)
    assert sum(len(d["entities"]) for d in docs) > 100


def test_a_big_document_ends_its_batch(monkeypatch):
    monkeypatch.setattr(api, "STREAM_CHARS", 10)
    from samedge.extract.inputs import Document

    items = [Document("a", "short"), Document("b", "a long document"), Document("c", "short"), Document("d", "x")]
    assert [[d.id for d in b] for b in api.batches(items, 16, api._big)] == [["a", "b"], ["c", "d"]]
    monkeypatch.setattr(api, "STREAM_CHARS", 10 ** 6)
    assert [[d.id for d in b] for b in api.batches(items, 3, api._big)] == [["a", "b", "c"], ["d"]]
