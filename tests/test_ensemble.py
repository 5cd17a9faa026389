"""--ensemble: combining two models' entities, by rule and end to end through two Extractors."""

from samedge.data.labels import make_label
from samedge.extract.ensemble import EnsembleExtractor, combine
from samedge.extract.extractor import Extractor
from tests.bundle_fixtures import GoldEngine


def e(start, end, label):
    return {"start": start, "end": end, "label": label, "text": "x" * (end - start)}


def test_union_keeps_the_first_model_on_conflicts_and_adds_the_rest():
    first = [e(0, 5, "person")]
    second = [e(2, 7, "organization"), e(10, 14, "location")]
    assert combine(first, second, "union") == [e(0, 5, "person"), e(10, 14, "location")]


def test_vote_keeps_what_both_models_predict():
    first = [e(0, 5, "person"), e(10, 14, "location")]
    second = [e(0, 5, "person"), e(10, 14, "organization")]
    assert combine(first, second, "vote") == [e(0, 5, "person")]


def test_an_ensemble_of_two_extractors_unions_their_entities_with_offsets():
    labels = [make_label("person"), make_label("location"), make_label("organization")]
    # The first model knows people and one place; the second knows places and organisations,
    # and reads "Paris Hilton" as a place, which overlaps the first model's person.
    first = Extractor(GoldEngine({"Ann Lee": "person", "Paris Hilton": "person", "Oslo": "location"}), labels)
    second = Extractor(GoldEngine({"Oslo": "location", "Paris": "location", "Acme Corp": "organization"}), labels)
    texts = ["Ann Lee flew to Oslo for Acme Corp.", "Paris Hilton met Ann Lee.", "Nothing here."]
    union = EnsembleExtractor(first, second, "union").extract_many(texts, ids=["a", "b", "c"])
    expected = [
        [(0, 7, "person", "Ann Lee"), (16, 20, "location", "Oslo"), (25, 34, "organization", "Acme Corp")],
        [(0, 12, "person", "Paris Hilton"), (17, 24, "person", "Ann Lee")],
        [],
    ]
    assert [[(e["start"], e["end"], e["label"], e["text"]) for e in doc["entities"]] for doc in union] == expected
    assert [doc["id"] for doc in union] == ["a", "b", "c"]
    for doc, text in zip(union, texts):
        assert all(text[e["start"]:e["end"]] == e["text"] for e in doc["entities"])
    assert union[0]["counts"]["chunks"] == 2  # one chunk from each model

    vote = EnsembleExtractor(first, second, "vote").extract_many(texts, ids=["a", "b", "c"])
    assert [[(e["start"], e["end"], e["label"]) for e in doc["entities"]] for doc in vote] == [
        [(16, 20, "location")], [], []]
