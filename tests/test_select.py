"""Selection: registry, cosine scores, top-k and its tie rule, weights, the report (no model needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from samedge.errors import UserError
from samedge.select import (SelectionReport, cosine_scores, get_strategy, register, select_by_similarity,
                            select_with, strategy_names, target_centroid, top_k)
from samedge.select import registry, weighting
from samedge.select.pipeline import expert_inputs, select_experts

FP = "a" * 64


def unit(*values):
    v = np.asarray(values, dtype=np.float64)
    return (v / np.linalg.norm(v)).tolist()


def library(**centroids):
    return {name: {"centroid": c, "embedder": FP} for name, c in centroids.items()}


# --- registry ----------------------------------------------------------------------

def test_similarity_is_registered_and_unknown_names_are_clear():
    assert "similarity" in strategy_names()
    assert get_strategy("similarity").fills == "similarity"
    with pytest.raises(UserError, match="unknown selection strategy .no-such.*similarity"):
        get_strategy("no-such")


def test_register_refuses_duplicates_and_bad_fields():
    with pytest.raises(ValueError, match="twice"):
        register("similarity", fills="similarity")(lambda experts, **kw: {})
    with pytest.raises(ValueError, match="fills"):
        register("x-bad", fills="loss")


def test_a_registered_strategy_runs_through_select_with(monkeypatch):
    monkeypatch.setitem(registry.STRATEGIES, "by-length", registry.Strategy(
        "by-length", lambda experts, **kw: {n: float(len(n)) for n in experts}, "performance", ("target",)))
    experts = {"aa": {}, "b": {}, "cccc": {}}
    report = select_with("by-length", experts, 2, weighting="uniform", target="t")
    assert report.selected_names() == ["cccc", "aa"]
    assert [e.performance for e in report.experts] == [4.0, 2.0, 1.0]
    assert all(e.similarity is None for e in report.experts)
    with pytest.raises(UserError, match="needs target"):
        select_with("by-length", experts, 2)


# --- similarity --------------------------------------------------------------------

def test_cosine_scores_match_numpy_and_are_rounded():
    experts = library(news=unit(1, 0.2, 0), bio=unit(0, 1, 0.3), food=unit(-1, 0, 0.1))
    target = unit(0.9, 0.3, 0.05)
    scores = cosine_scores(target, experts, FP)
    for name, e in experts.items():
        assert scores[name] == pytest.approx(float(np.dot(target, e["centroid"])), abs=1e-6)
        assert scores[name] == round(scores[name], 6)
    # Unnormalised inputs give the same cosines.
    assert cosine_scores([x * 7 for x in target], experts, FP) == scores


def test_ties_break_by_name_ascending():
    same = unit(1, 1, 0)
    experts = library(zeta=same, alpha=same, mid=same, low=unit(0, 0, 1))
    report = select_by_similarity(unit(1, 1, 0), experts, k=2, embedder=FP)
    assert report.selected_names() == ["alpha", "mid"]
    assert [e.name for e in report.experts] == ["alpha", "mid", "zeta", "low"]
    assert [e.rank for e in report.experts] == [1, 2, 3, 4]
    assert top_k({"b": 0.5, "a": 0.5, "c": 0.9}, 2) == ["c", "a"]


def test_near_ties_below_the_6th_decimal_are_ties():
    # Float noise must not decide a rank: 1e-9 apart is a tie, so the name decides.
    experts = library(b=unit(1, 0), a=unit(1, 1e-9))
    assert select_by_similarity(unit(1, 0), experts, k=1, embedder=FP).selected_names() == ["a"]


def test_k_larger_than_library_selects_all():
    experts = library(a=unit(1, 0), b=unit(0, 1))
    report = select_by_similarity(unit(1, 0.5), experts, k=10, embedder=FP)
    assert report.selected_names() == ["a", "b"]
    assert report.k == 2
    assert math.isclose(sum(e.weight for e in report.experts), 1.0)


def test_auto_k_keeps_the_experts_near_the_best_score():
    # One expert stands out: it alone is merged; several close to the best: all of them (at most 5).
    assert top_k({"a": 0.6, "b": 0.3, "c": 0.2}, "auto", ratio=0.8) == ["a"]
    assert top_k({"a": 0.6, "b": 0.5, "c": 0.49, "d": 0.1}, "auto", ratio=0.8) == ["a", "b", "c"]
    assert len(top_k({n: 0.5 for n in "abcdefg"}, "auto")) == registry.AUTO_K_MAX
    assert top_k({"a": 0.0, "b": 0.0}, "auto") == ["a"], "nobody scores: the first by the tie rule"


@pytest.mark.parametrize("k", [0, -1, 1.5, True, None, "many"])
def test_bad_k_is_refused(k):
    with pytest.raises(UserError, match="k must be"):
        select_by_similarity(unit(1, 0), library(a=unit(1, 0)), k=k, embedder=FP)


def test_empty_library_is_a_clear_error():
    with pytest.raises(UserError, match="library is empty"):
        select_by_similarity(unit(1, 0), {}, k=3, embedder=FP)
    with pytest.raises(UserError, match="library is empty"):
        cosine_scores(unit(1, 0), {}, FP)


def test_wrong_embedder_fingerprint_is_refused():
    experts = library(a=unit(1, 0), b=unit(0, 1))
    experts["b"]["embedder"] = "b" * 64
    with pytest.raises(UserError, match="different embedder.*b \\(bbbbbbbbbbbb\\)"):
        select_by_similarity(unit(1, 0), experts, k=1, embedder=FP)
    # Without the target's fingerprint the experts must still agree with each other.
    with pytest.raises(UserError, match="different embedders"):
        select_by_similarity(unit(1, 0), experts, k=1)
    experts["b"]["embedder"] = None
    with pytest.raises(UserError, match="different embedder"):
        select_by_similarity(unit(1, 0), experts, k=1, embedder=FP)


@pytest.mark.parametrize("bad, message", [
    (None, "has no centroid"), ([], "non-empty"), ([0.0, 0.0], "zero vector"),
    ([1.0, float("nan")], "NaN"), ([[1.0, 0.0]], "1-D"), ([1.0, 0.0, 0.0], "dimensions")])
def test_bad_centroids_are_refused(bad, message):
    experts = library(good=unit(1, 0), bad=bad)
    with pytest.raises(UserError, match=message):
        select_by_similarity(unit(1, 0), experts, k=1, embedder=FP)


# --- target texts ------------------------------------------------------------------

class FakeEmbedder:
    """Stands in for samedge.embed.Embedder: one fixed direction per text length."""
    fingerprint = FP

    def __init__(self):
        self.calls = []

    def centroid(self, texts, max_texts=256, seed=0):
        self.calls.append((list(texts), max_texts, seed))
        v = np.array([len(texts), 1.0, 0.0])
        return v / np.linalg.norm(v)


def test_target_with_zero_texts_is_a_clear_error():
    for texts in ([], ["", "   "]):
        with pytest.raises(UserError, match="no \\(non-blank\\) sample texts"):
            target_centroid(texts, FakeEmbedder())
    with pytest.raises(UserError, match="single string"):
        target_centroid("one string", FakeEmbedder())


def test_target_with_few_texts_falls_back_with_a_note():
    fake = FakeEmbedder()
    centroid, notes = target_centroid(["one", "two", "three"], fake)
    assert centroid.shape == (3,)
    assert fake.calls[0][0] == ["one", "two", "three"]
    assert len(notes) == 1 and "only 3 texts" in notes[0]
    _, notes = target_centroid([f"t{i}" for i in range(40)], fake)
    assert notes == []


class Target:
    def __init__(self, texts):
        self.texts = texts


class Expert:
    def __init__(self, name, vector, embedder=FP):
        self.name = name
        self.manifest = {"centroid": None if vector is None else
                         {"embedder": embedder, "texts": 256, "vector": vector}}


def test_pipeline_selects_from_library_experts_and_records_notes():
    experts = [Expert("near", unit(3, 1, 0)), Expert("far", unit(0, 0, 1)), Expert("mid", unit(1, 1, 0))]
    report = select_experts(Target(["a", "b", "c"]), experts, k=2, embedder=FakeEmbedder())
    assert report.selected_names() == ["near", "mid"]
    assert report.embedder == FP
    assert any("only 3 texts" in n for n in report.notes)
    assert "note: target centroid from only 3 texts" in report.table()


def test_pipeline_refuses_experts_without_centroid_and_unknown_strategies():
    with pytest.raises(UserError, match="'bare' has no domain centroid.*experts centroid bare"):
        select_experts(Target(["a"]), [Expert("bare", None)], embedder=FakeEmbedder())
    with pytest.raises(UserError, match="unknown selection strategy .no-such."):
        select_experts(Target(["a"]), [Expert("x", unit(1, 0))], strategy="no-such", embedder=FakeEmbedder())
    with pytest.raises(UserError, match="library is empty"):
        select_experts(Target(["a"]), [], embedder=FakeEmbedder())
    with pytest.raises(UserError, match="unique"):
        expert_inputs([Expert("x", unit(1, 0)), Expert("x", unit(0, 1))])


# --- weights -----------------------------------------------------------------------

@pytest.mark.parametrize("rule", sorted(weighting.WEIGHTINGS))
@pytest.mark.parametrize("scores", [[0.9], [0.7, 0.6, 0.1], [0.3, 0.3, 0.3, 0.3], [-0.2, -0.5], [1.0, -1.0, 0.0]])
def test_weights_sum_to_one_and_follow_the_scores(rule, scores):
    w = weighting.weights(rule, scores, temperature=0.05)
    assert len(w) == len(scores)
    assert math.isclose(math.fsum(w), 1.0, abs_tol=1e-12)
    assert all(x >= 0 for x in w)
    for i in range(len(scores)):
        for j in range(len(scores)):
            if scores[i] > scores[j]:
                assert w[i] >= w[j]


def test_softmax_temperature_sharpens_and_is_validated():
    soft = weighting.softmax([0.7, 0.6], temperature=1.0)
    sharp = weighting.softmax([0.7, 0.6], temperature=0.05)
    assert sharp[0] > soft[0] > 0.5
    assert sharp[0] / sharp[1] == pytest.approx(math.exp(2))
    assert weighting.softmax([1000.0, 999.0], temperature=0.001)[0] == pytest.approx(1.0)  # no overflow
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UserError, match="temperature"):
            weighting.softmax([0.5], bad)


def test_normalized_and_uniform_rules():
    assert weighting.normalized([0.6, 0.2]) == pytest.approx([0.75, 0.25])
    assert weighting.normalized([0.6, -0.2]) == pytest.approx([1.0, 0.0])
    assert weighting.normalized([-0.1, -0.3]) == pytest.approx([0.5, 0.5])
    assert weighting.uniform([0.9, 0.1, 0.5]) == pytest.approx([1 / 3] * 3)
    with pytest.raises(UserError, match="unknown weighting 'max'"):
        weighting.weights("max", [0.5])
    with pytest.raises(UserError, match="no selected experts"):
        weighting.softmax([])


def test_default_weighting_is_uniform_over_the_selected():
    assert weighting.DEFAULT_WEIGHTING == "uniform" and weighting.DEFAULT_TEMPERATURE == 0.05
    report = select_by_similarity(unit(1, 0), library(a=unit(1, 0), b=unit(1, 1), c=unit(0, 1)), k=2, embedder=FP)
    assert report.weighting["name"] == "uniform"
    assert [report.weight_of(n) for n in ("a", "b", "c")] == [0.5, 0.5, 0.0]
    sharp = select_by_similarity(unit(1, 0), library(a=unit(1, 0), b=unit(1, 1)), k=2, weighting="softmax",
                                 embedder=FP)
    assert sharp.weighting["temperature"] == 0.05 and "exp(s_i/T)" in sharp.weighting["rule"]


def test_unselected_experts_get_weight_zero():
    report = select_by_similarity(unit(1, 0), library(a=unit(1, 0), b=unit(1, 1), c=unit(0, 1)), k=1,
                                  weighting="normalized", embedder=FP)
    assert [(e.name, e.selected, e.weight) for e in report.experts] == [
        ("a", True, 1.0), ("b", False, 0.0), ("c", False, 0.0)]
    assert report.weight_of("a") == 1.0
    with pytest.raises(UserError, match="not in this selection"):
        report.weight_of("zzz")


# --- the report --------------------------------------------------------------------

def test_report_to_dict_is_json_and_table_is_printable():
    report = select_by_similarity(unit(1, 0.1), library(news=unit(1, 0), web=unit(1, 1), bio=unit(0, 1)),
                                  k=2, embedder=FP)
    assert isinstance(report, SelectionReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["strategy"] == "similarity" and data["k"] == 2 and data["embedder"] == FP
    assert data["selected"] == ["news", "web"]
    assert data["tie_rule"].startswith("higher score first")
    assert [e["name"] for e in data["experts"]] == ["news", "web", "bio"]
    assert set(data["experts"][0]) == {"name", "similarity", "performance", "rank", "selected", "weight"}
    assert data["experts"][0]["performance"] is None
    table = report.table()
    lines = table.splitlines()
    assert lines[0].split() == ["rank", "expert", "similarity", "performance", "selected", "weight"]
    assert lines[2].split()[:2] == ["1", "news"] and "yes" in lines[2]
    assert "top 2 by similarity" in table and "w_i = 1/k" in table


def test_the_cli_takes_k_as_a_number_or_auto():
    import click

    from samedge.cli.build import K_TYPE

    assert K_TYPE.convert("3", None, None) == 3 and K_TYPE.convert("auto", None, None) == "auto"
    with pytest.raises(click.BadParameter, match="neither a whole number nor 'auto'"):
        K_TYPE.convert("many", None, None)
