"""The transfer recipe: which labels a training prompt lists, under which names, and the answer."""

from __future__ import annotations

import random

from samedge.data.labels import make_label
from samedge.train.recipe import CONCEPT_GROUPS, Recipe, answer_entities, shown_labels, vocabulary
from samedge.train.examples import batch_plan, example_rng, make_example

DOMAIN = [make_label("person"), make_label("location"), make_label("organization")]
DOC = {"id": "d", "text": "Ann met Bob in Rome at Acme.",
       "entities": [{"start": 0, "end": 3, "label": "person", "text": "Ann"},
                    {"start": 8, "end": 11, "label": "person", "text": "Bob"},
                    {"start": 15, "end": 19, "label": "location", "text": "Rome"},
                    {"start": 23, "end": 27, "label": "organization", "text": "Acme"}]}


def _group(name):
    return next((g for g in CONCEPT_GROUPS if name in g), {name})


def test_plain_recipe_lists_every_domain_label_and_absent_ones_from_other_concepts():
    for seed in range(50):
        shown = shown_labels(DOMAIN, vocabulary(), random.Random(seed), Recipe(max_negatives=3))
        sources = [src for _, src in shown]
        assert sorted(s for s in sources if s) == ["location", "organization", "person"]
        negatives = [lab.name for lab, src in shown if src is None]
        assert len(negatives) <= 3
        for name in negatives:  # never "place" beside "location", "company" beside "organization"
            assert not any(name in _group(d.name) for d in DOMAIN), name
        assert all(lab.name == src for lab, src in shown if src)


def test_renamed_labels_keep_their_description_and_the_answer_uses_the_shown_name():
    renamed = 0
    for seed in range(50):
        shown = shown_labels(DOMAIN, vocabulary(), random.Random(seed), Recipe(rename_prob=1.0))
        names = [lab.name.lower() for lab, _ in shown]
        assert len(names) == len(set(names)), "two labels never share a shown name"
        by_source = {src: lab for lab, src in shown if src}
        for d in DOMAIN:
            assert by_source[d.name].description == d.description
        renamed += sum(lab.name != src for lab, src in shown if src)
        answer = answer_entities(DOC["entities"], shown)
        assert [e["label"] for e in answer] == [by_source[e["label"]].name for e in DOC["entities"]]
    assert renamed > 30, "about half the labels of a renamed example get another name"


def test_subsets_drop_the_mentions_of_labels_not_listed():
    sizes = set()
    for seed in range(50):
        shown = shown_labels(DOMAIN, vocabulary(), random.Random(seed), Recipe(max_negatives=0, subset_prob=1.0))
        listed = {src for _, src in shown}
        assert 1 <= len(listed) < 3
        sizes.add(len(listed))
        assert {e["label"] for e in answer_entities(DOC["entities"], shown)} <= listed
    assert sizes == {1, 2}


def test_an_example_is_a_pure_function_of_seed_step_and_slot():
    recipe = Recipe(max_negatives=3, rename_prob=0.5, subset_prob=0.3)
    a = make_example(DOC, DOMAIN, example_rng(0, 7, 2), recipe)
    assert a == make_example(DOC, DOMAIN, example_rng(0, 7, 2), recipe)
    variants = {make_example(DOC, DOMAIN, example_rng(0, step, 0), recipe) for step in range(20)}
    assert len(variants) > 5, "each epoch shows a document with a fresh label list"
    prompt, answer = a
    assert answer.endswith("<|im_end|>") and DOC["text"] in prompt


def test_length_buckets_cover_each_epoch_once_and_pad_less():
    rng = random.Random(0)
    lengths = [rng.randint(10, 300) for _ in range(256)]
    plan = batch_plan(256, 8, 64, seed=3, lengths=lengths)
    assert plan == batch_plan(256, 8, 64, seed=3, lengths=lengths)
    assert sorted(i for b in plan[:32] for i in b) == list(range(256))
    plain = batch_plan(256, 8, 64, seed=3)

    def padding(p):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in p)
    assert padding(plan) < padding(plain) / 3
