"""The answer map: how a merged model's answer types are read, learned from labeled target examples."""

from __future__ import annotations

import json

import pytest

from samedge.data.labels import Label
from samedge.extract.extractor import Extractor
from samedge.extract.prompts import answer_keys, parse_answer
from samedge.select.answer_map import fit_answer_map, learn_answer_map
from tests.bundle_fixtures import GoldEngine, cli_env, real_bundle  # noqa: F401

LABELS = [Label("politician", "politicians"), Label("person", "other people", tag="PER"),
          Label("political party", "parties")]


def test_parse_answer_reads_through_the_map_and_raw_keeps_every_type():
    answer = "person: Ann\nOrganization: Labour\nlocation: Leeds"
    plain = parse_answer(answer, LABELS)
    assert plain.pairs == [("PER", "Ann")] and plain.unknown_labels == {"Organization": 1, "location": 1}
    mapped = parse_answer(answer, LABELS, {"person": "politician", "organization": "political party",
                                           "location": None})
    assert mapped.pairs == [("politician", "Ann"), ("political party", "Labour")]
    assert mapped.unknown_labels == {"location": 1}, "a type mapped to nothing is dropped and counted"
    raw = parse_answer(answer, LABELS, raw=True)
    assert raw.pairs == [("person", "Ann"), ("organization", "Labour"), ("location", "Leeds")]


def test_the_map_moves_a_type_to_the_tag_it_matches_and_keeps_it_where_evidence_is_thin():
    default = answer_keys(LABELS)  # person -> PER
    # "person" answers: 3 are politicians, 1 is another person; "organization": 2 parties; "x": once, wrong.
    preds = [[(0, 3, "person"), (4, 7, "person"), (8, 11, "organization")],
             [(0, 3, "person"), (4, 7, "person"), (8, 11, "organization"), (12, 13, "x")]]
    gold = [[(0, 3, "politician"), (4, 7, "politician"), (8, 11, "political party")],
            [(0, 3, "politician"), (4, 7, "PER"), (8, 11, "political party")]]
    assert learn_answer_map(preds, gold, default, min_support=2) == {"person": "politician",
                                                                     "organization": "political party"}
    # With too little support nothing moves: one match is a coincidence.
    assert learn_answer_map(preds[:1], gold[:1], default, min_support=4) == {}


def test_a_type_that_is_mostly_wrong_is_dropped_when_that_raises_f1():
    default = {"person": "PER", "misc": "MISC"}
    preds = [[(0, 3, "person"), (4, 5, "misc"), (6, 7, "misc"), (8, 9, "misc")]]
    gold = [[(0, 3, "PER"), (10, 12, "MISC")]]
    assert learn_answer_map(preds, gold, default, min_support=2) == {"misc": None}
    assert learn_answer_map([[]], [[(0, 1, "PER")]], default) == {}, "no answers: nothing to learn"
    outside = learn_answer_map([[(0, 3, "person")]], [[(0, 3, "EVENT")]], default)
    assert outside == {}, "a gold type outside the label set is never a reading (and a tie keeps the default)"


def test_fit_and_extract_read_answers_as_the_examples_say():
    """A model that calls every politician "person": fitted on labeled examples, the Extractor with
    the map returns the target's tag, and the counts say what changed."""
    engine = GoldEngine({"Ann Lee": "person", "Bo Chan": "person", "Labour": "organization"})
    docs = [{"id": str(i), "text": text, "entities": [
        {"start": text.index(m), "end": text.index(m) + len(m), "label": lab, "text": m} for m, lab in ents]}
        for i, (text, ents) in enumerate([
            ("Ann Lee leads Labour .", [("Ann Lee", "politician"), ("Labour", "political party")]),
            ("Bo Chan left Labour .", [("Bo Chan", "politician"), ("Labour", "political party")])])]
    fitted = fit_answer_map(engine, LABELS, docs, min_support=2)
    assert fitted["map"] == {"person": "politician", "organization": "political party"}
    assert (fitted["f1_before"], fitted["f1_after"]) == (0.0, 100.0)
    assert {r["answer"]: r["was"] for r in fitted["changes"]} == {"person": "PER", "organization": None}
    got = Extractor(engine, LABELS, answer_map=fitted["map"]).extract("Ann Lee joined Labour .")["entities"]
    assert [(e["text"], e["label"]) for e in got] == [("Ann Lee", "politician"), ("Labour", "political party")]
    other = Extractor(engine, LABELS[:2], answer_map=fitted["map"]).extract("Ann Lee joined Labour .")["entities"]
    assert [(e["text"], e["label"]) for e in other] == [("Ann Lee", "politician")], \
        "map entries whose tag the label set lacks are ignored"


@pytest.mark.real
def test_a_build_with_labeled_examples_records_its_answer_map_and_extraction_uses_it(real_bundle):
    """The legal profile ships a labeled dev set, so its build learns an answer map on it; loading the
    bundle hands that map to the Extractor."""
    from samedge.bundle import load_extractor

    data = json.loads((real_bundle / "bundle.json").read_text())
    fitted = data["answer_map"]
    assert fitted["documents"] >= 30 and fitted["f1_after"] >= fitted["f1_before"]
    tags = {lab["tag"] for lab in data["labels"]}
    assert all(tag is None or tag in tags for tag in fitted["map"].values())
    extractor = load_extractor(real_bundle, threads=1, n_seq=2)
    try:
        assert extractor.answer_map == fitted["map"]
    finally:
        extractor.engine.close()
