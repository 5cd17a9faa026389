"""Writers round-trip: JSONL and spaCy exactly, CoNLL for whitespace-tokenised texts."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from samedge.data import read_conll, read_jsonl, to_conll_lines, to_spacy, write_documents, write_jsonl

DOCS = [
    {"id": "d1", "text": "Ann Lee flew from São Paulo to 東京 on Monday .",
     "entities": [{"start": 0, "end": 7, "label": "person", "text": "Ann Lee"},
                  {"start": 18, "end": 27, "label": "location", "text": "São Paulo"},
                  {"start": 31, "end": 33, "label": "location", "text": "東京"}]},
    {"id": "d2", "text": "no entities 🙂", "entities": []},
    # Two adjacent entities of one type must stay two.
    {"id": "d3", "text": "Paris London Rome",
     "entities": [{"start": 0, "end": 5, "label": "location", "text": "Paris"},
                  {"start": 6, "end": 12, "label": "location", "text": "London"},
                  {"start": 13, "end": 17, "label": "location", "text": "Rome"}]},
]


def strip_ids(docs):
    return [{"text": d["text"], "entities": d["entities"]} for d in docs]


def test_jsonl_round_trip(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", DOCS)
    assert read_jsonl(tmp_path / "d.jsonl") == DOCS
    write_documents(tmp_path / "e.jsonl", DOCS, "jsonl")
    assert (tmp_path / "e.jsonl").read_bytes() == (tmp_path / "d.jsonl").read_bytes()


def test_conll_round_trip(tmp_path):
    write_documents(tmp_path / "d.conll", DOCS, "conll")
    assert strip_ids(read_conll(tmp_path / "d.conll")) == strip_ids(DOCS)


def test_conll_lines_use_iob2_and_underscores():
    doc = {"text": "HeLa cells", "entities": [{"start": 0, "end": 10, "label": "cell line"}]}
    assert to_conll_lines(doc) == ["HeLa\tB-cell_line", "cells\tI-cell_line"]


def test_conll_tags_a_token_that_an_entity_only_overlaps():
    doc = {"text": "Berlin-based firm", "entities": [{"start": 0, "end": 6, "label": "location"}]}
    assert to_conll_lines(doc) == ["Berlin-based\tB-location", "firm\tO"]


def test_spacy_round_trip(tmp_path):
    write_documents(tmp_path / "d.spacy.jsonl", DOCS, "spacy")
    lines = (tmp_path / "d.spacy.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == to_spacy(DOCS[0])
    assert set(json.loads(lines[0])) == {"text", "ents"}
    # Our JSONL reader takes spaCy's `ents`, so the file reads back whole.
    assert strip_ids(read_jsonl(tmp_path / "d.spacy.jsonl")) == strip_ids(DOCS)


TOKENS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
                 min_size=1, max_size=6).filter(lambda t: t.strip() == t and t != "-DOCSTART-")


@st.composite
def tokenised_docs(draw):
    tokens = draw(st.lists(TOKENS, min_size=1, max_size=12))
    tags, i = [], 0
    while i < len(tokens):
        n = draw(st.integers(0, min(3, len(tokens) - i)))
        if n == 0:
            tags.append(None)
            i += 1
            continue
        label = draw(st.sampled_from(["per", "loc", "org"]))
        tags.extend((label, k == 0) for k in range(n))
        i += n
    text = " ".join(tokens)
    entities, offset, current = [], 0, None
    for tok, tag in zip(tokens, tags):
        start, end = offset, offset + len(tok)
        offset = end + 1
        if tag is None:
            current = None
        elif tag[1] or current is None:
            current = {"start": start, "end": end, "label": tag[0]}
            entities.append(current)
        else:
            current["end"] = end
    for e in entities:
        e["text"] = text[e["start"]:e["end"]]
    return {"id": "x", "text": text, "entities": entities}


@settings(max_examples=60, deadline=None)
@given(tokenised_docs())
def test_conll_round_trip_property(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("rt") / "d.conll"
    write_documents(path, [doc], "conll")
    assert strip_ids(read_conll(path, scheme="iob2", tag_column="last")) == strip_ids([doc])
