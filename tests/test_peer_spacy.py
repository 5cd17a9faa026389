"""The spaCy peer row of benchmarks/accuracy.py: its type mapping is learned on labeled train documents only."""

from __future__ import annotations

import pytest

spacy = pytest.importorskip("spacy")

from benchmarks.peer_spacy import learn_mapping, predict  # noqa: E402


@pytest.fixture(scope="module")
def nlp():
    # A real spaCy pipeline whose "NER" is an entity ruler: no model download needed.
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "ORG", "pattern": "Acme"}, {"label": "GPE", "pattern": "Paris"},
                        {"label": "PERSON", "pattern": "Ann"}, {"label": "DATE", "pattern": "May"}])
    return nlp


def _doc(i, text, ents):
    out = []
    for mention, label in ents:
        start = text.index(mention)
        out.append({"start": start, "end": start + len(mention), "label": label, "text": mention})
    return {"id": str(i), "text": text, "entities": out}


def test_each_type_maps_to_the_label_it_matches_most_and_unmatched_types_drop(nlp):
    train = [_doc(0, "Ann left Acme for Paris .", [("Ann", "human"), ("Acme", "firm"), ("Paris", "city")]),
             _doc(1, "Acme hired Ann .", [("Acme", "firm"), ("Ann", "human")]),
             _doc(2, "Paris in May .", [("Paris", "place")]),
             _doc(3, "Acme opened in Paris .", [("Paris", "city")])]
    mapping = learn_mapping(nlp, train)
    assert mapping == {"ORG": "firm", "GPE": "city", "PERSON": "human"}, "DATE never matched: dropped"
    test = [_doc(9, "Ann met Acme in May .", [])]
    preds, speed = predict(nlp, test, mapping)
    assert [(e["label"], e["text"]) for e in preds[0]["entities"]] == [("human", "Ann"), ("firm", "Acme")]
    assert speed > 0
