"""Performance selection: the agreement scores (pure), sampling, and the labeled F1 path on real bundles."""

from __future__ import annotations

import pytest

from samedge.errors import UserError
from samedge.select.performance import agreement_scores, sample_instances
from samedge.targets import Target
from samedge.data.labels import make_label


def _doc(spans, i=0):
    return {"id": f"d{i}", "text": "x" * 50, "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]}


def test_vote_rewards_the_experts_that_agree_with_the_majority():
    predictions = {
        "a": [_doc([(0, 4, "person"), (10, 14, "location")])],
        "b": [_doc([(0, 4, "person"), (10, 14, "location")])],
        "c": [_doc([(0, 4, "organization")])],
    }
    scores = agreement_scores(predictions, "vote")
    assert scores["a"] == scores["b"] == 1.0
    assert scores["c"] == 0.0


def test_silent_experts_do_not_outvote_the_ones_that_find_entities():
    # Two experts find the same person, three find nothing: the finders agree, the silent ones score 0.
    finds = [_doc([(0, 4, "person")]), _doc([], 1)]
    silent = [_doc([]), _doc([], 1)]
    predictions = {"a": finds, "b": finds, "x": silent, "y": silent, "z": silent}
    for mode in ("vote", "vote_all", "vote_coverage", "pairwise"):
        scores = agreement_scores(predictions, mode)
        assert scores["x"] == scores["y"] == scores["z"] == 0.0
        assert scores["a"] == scores["b"] > 0.0


def test_vote_all_needs_a_majority_of_every_expert_that_speaks():
    # Two gene taggers agree on a protein in the first document, where the three generalists find
    # nothing; the generalists agree on a person in the second. Per document (``vote``) the taggers
    # are a majority of the voters there; of all five speaking experts (``vote_all``) they are not.
    gene, person = (0, 4, "protein"), (10, 14, "person")
    taggers = [_doc([gene]), _doc([], 1)]
    generalists = [_doc([]), _doc([person], 1)]
    predictions = {"bc2gm": taggers, "jnlpba": taggers, "x": generalists, "y": generalists, "z": generalists}
    vote = agreement_scores(predictions, "vote")
    assert vote["bc2gm"] == vote["x"] == pytest.approx(2 / 3)  # a tie: each misses the other majority
    vote_all = agreement_scores(predictions, "vote_all")
    assert vote_all["x"] == 1.0 and vote_all["bc2gm"] == 0.0


def test_vote_coverage_ranks_an_expert_that_uses_more_of_the_labels_first():
    # Both agree with the majority everywhere; one uses 1 of the target's 4 labels, the other 2.
    wide = [_doc([(0, 4, "person"), (10, 14, "location")])]
    narrow = [_doc([(0, 4, "person")])]
    predictions = {"wide": wide, "wide2": wide, "narrow": narrow}
    scores = agreement_scores(predictions, "vote_coverage", n_labels=4)
    plain = agreement_scores(predictions, "vote")
    assert scores["wide"] == pytest.approx(plain["wide"] * 0.5 ** 0.5)
    assert scores["narrow"] == pytest.approx(plain["narrow"] * 0.25 ** 0.5)
    assert scores["wide"] > scores["narrow"]


def test_pairwise_is_the_mean_f1_against_each_other_expert():
    predictions = {"a": [_doc([(0, 4, "person")])], "b": [_doc([(0, 4, "person")])], "c": [_doc([])]}
    scores = agreement_scores(predictions, "pairwise")
    assert scores["a"] == pytest.approx(0.5)  # F1 1 against b, 0 against c
    assert scores["c"] == 0.0


def test_agreement_edge_cases():
    assert agreement_scores({"solo": [_doc([])]}, "vote") == {"solo": 1.0}
    for mode in ("pairwise", "vote", "vote_all", "vote_coverage"):  # experts that find nothing do not agree with each other
        assert agreement_scores({"a": [_doc([])], "b": [_doc([])]}, mode) == {"a": 0.0, "b": 0.0}
    with pytest.raises(UserError, match="agreement mode"):
        agreement_scores({"a": [_doc([])]}, "median")


def test_sampling_is_seeded_and_falls_back_to_all_when_few():
    target = Target("t", "test", [make_label("person")], [f"text {i}" for i in range(50)])
    a, labeled = sample_instances(target, 8, seed=1)
    b, _ = sample_instances(target, 8, seed=1)
    c, _ = sample_instances(target, 8, seed=2)
    assert not labeled and a == b and a != c and len(a) == 8
    few, _ = sample_instances(Target("t", "test", [make_label("person")], ["one", "two"]), 32, seed=0)
    assert [d["text"] for d in few] == ["one", "two"]
    with pytest.raises(UserError):
        sample_instances(target, 0, seed=0)


def test_labeled_sampling_reads_the_dev_file(tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"id": "1", "text": "Ann met Bob.", "entities": [{"start": 0, "end": 3, "label": "person"}]}\n')
    docs, labeled = sample_instances(Target("t", "test", [make_label("person")], ["x"], dev=dev), 4, seed=0)
    assert labeled and docs[0]["entities"][0]["text"] == "Ann"


def test_a_runner_decodes_each_expert_once_per_sample(monkeypatch, tmp_path):
    """Repeated scoring of the same expert on the same sample (several strategies in one build,
    --ensemble, benchmarks) reuses the first decode; another sample or label set decodes again."""
    from types import SimpleNamespace

    from samedge.select import runner

    calls = []

    class FakeEngine:
        name = "fake"

        def __init__(self, *a, **k):
            pass

        def count_tokens(self, text):
            return len(text.split())

        def set_adapter(self, path, scale=1.0):
            self.adapter = path

        def complete(self, prefix, texts, suffix, max_tokens):
            calls.append((self.adapter, tuple(texts)))
            return [("person: Ann", True) for _ in texts]

        def close(self):
            pass

    monkeypatch.setattr("samedge.extract.engines.llama.LlamaEngine", FakeEngine)
    monkeypatch.setattr(runner, "scoring_base", lambda base: tmp_path / "base.gguf")
    monkeypatch.setattr(runner, "lora_gguf", lambda expert, base_gguf: expert.name)
    experts = {n: {"expert": SimpleNamespace(name=n, path=tmp_path / n,
                                             manifest={"files": {"adapter_model.safetensors": n * 8}})}
               for n in ("a", "b")}
    labels = [make_label("person")]
    docs = [{"id": "1", "text": "Ann is here."}]
    base = SimpleNamespace(gguf=tmp_path / "base.gguf")
    run = runner.ExpertRunner()
    first = run(experts, labels, docs, base, progress=False)
    assert len(calls) == 2
    first["a"][0]["entities"].clear()  # callers may edit what they get; the runner keeps its own copy
    again = run(experts, labels, docs, base, progress=False)
    assert len(calls) == 2 and again["a"][0]["entities"][0]["text"] == "Ann"
    run(experts, labels, [{"id": "2", "text": "Bob is here."}], base, progress=False)
    run(experts, [make_label("location")], docs, base, progress=False)
    assert len(calls) == 6
    runner.run_experts(experts, labels, docs, base, progress=False)  # a fresh runner: nothing shared
    assert len(calls) == 8


def test_the_performance_strategy_uses_the_runner_it_is_given(tmp_path):
    """Scoring is injected: a runner stands in for llama.cpp, and the strategy turns its predictions into F1."""
    import json
    from types import SimpleNamespace

    from samedge.select.performance import performance_strategy

    ann = {"start": 0, "end": 3, "label": "person", "text": "Ann"}
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"id": "1", "text": "Ann met Bob.", "entities": [ann]}) + "\n")
    found = {"right": [ann], "wrong": [{"start": 8, "end": 11, "label": "person", "text": "Bob"}]}
    asked = []

    def runner(experts, labels, docs, base, threads=None):
        asked.append(sorted(experts))
        return {n: [dict(docs[0], entities=found[n])] for n in experts}

    target = SimpleNamespace(name="t", dev=dev, texts=[], labels=[make_label("person")])
    scores = performance_strategy({"right": {}, "wrong": {}}, target=target, base=object(), runner=runner)
    assert scores == {"right": 1.0, "wrong": 0.0} and asked == [["right", "wrong"]]


def test_without_labels_the_strategy_scores_by_the_agreement_mode_it_is_given():
    """The build's ``agreement`` option reaches the scores: two gene taggers alone in a document win
    under ``vote`` ties but lose under ``vote_all``, and an unknown mode is refused."""
    from types import SimpleNamespace

    from samedge.select.performance import performance_strategy

    gene, person = (0, 3, "protein"), (8, 11, "person")
    said = {"bc2gm": [[gene], []], "jnlpba": [[gene], []], "x": [[], [person]], "y": [[], [person]],
            "z": [[], [person]]}

    def runner(experts, labels, docs, base, threads=None):
        return {n: [dict(d, entities=[{"start": s, "end": e, "label": lab} for s, e, lab in said[n][i]])
                    for i, d in enumerate(docs)] for n in experts}

    target = SimpleNamespace(name="t", dev=None, texts=["Ann met Bob.", "Bob met Ann."],
                             labels=[make_label("person"), make_label("protein")])
    experts = {n: {} for n in said}
    vote_all = performance_strategy(experts, target=target, base=object(), runner=runner, agreement="vote_all")
    assert vote_all["x"] == 1.0 and vote_all["bc2gm"] == 0.0
    vote = performance_strategy(experts, target=target, base=object(), runner=runner)  # the default
    assert vote["x"] == vote["bc2gm"]
    with pytest.raises(UserError, match="agreement mode"):
        performance_strategy(experts, target=target, base=object(), runner=runner, agreement="median")
