"""--ensemble: combining two models' entities."""

from samedge.extract.ensemble import combine


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
