"""Label alignment: a target label the experts never saw is shown under their closest known name,
and an answer naming a type the prompt does not list is read as the closest listed label."""

from __future__ import annotations

import numpy as np
import pytest

from samedge.data.labels import Label
from samedge.prompts import parse_answer
from samedge.select.label_alignment import (alias_labels, align_labels, label_text, labels_for, match_aliases,
                                            match_labels)
from tests.bundle_fixtures import cli_env, run_cli  # noqa: F401


class TableEmbedder:
    """Fixed vectors per text: the maths of alignment without a model."""

    def __init__(self, vectors: dict):
        self.vectors = vectors

    def embed(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


VOCAB = [Label("person", "names of people"), Label("location", "places"), Label("organization", "companies")]


def _embedder(extra):
    vectors = {label_text(lab): v for lab, v in zip(VOCAB, np.eye(3))}
    vectors.update(extra)
    return TableEmbedder(vectors)


def test_unknown_names_take_the_closest_known_name_and_keep_tag_and_description():
    human = Label("human", "names of people", tag="HUM")
    firm = Label("firm", "companies", tag="firm")
    weird = Label("vibe", "the mood of a text")
    emb = _embedder({label_text(human): [0.9, 0.1, 0], label_text(firm): [0.1, 0.2, 0.95],
                     label_text(weird): [0.3, 0.3, 0.3]})
    aligned, report = align_labels([human, firm, weird, VOCAB[1]], VOCAB, emb, threshold=0.8)
    assert [lab.name for lab in aligned] == ["person", "organization", "vibe", "location"]
    assert [lab.tag for lab in aligned] == ["HUM", "firm", "vibe", "location"], "outputs keep the user's tags"
    assert aligned[0].description == "names of people"
    assert [(r["tag"], r["to"]) for r in report] == [("HUM", "person"), ("firm", "organization")]


def test_two_labels_never_share_a_name_and_known_names_are_reserved():
    sim = np.array([[0.9, 0.1], [0.85, 0.2], [0.95, 0.0]])
    # A known label keeps its own name (align_labels leaves names in use out of the vocabulary).
    assert match_labels(sim, [False, False, True], 0.5) == {0: 0}
    assert match_labels(sim, [False, False, False], 0.5) == {2: 0}, "one name per label: the best match wins"
    assert match_labels(sim[:2], [False, False], 0.5) == {0: 0}
    assert match_labels(sim[:2], [False, False], 0.95) == {}


def test_a_name_in_use_is_not_offered_to_another_label():
    place = Label("place", "places")
    emb = _embedder({label_text(place): [0.0, 1.0, 0.0]})
    aligned, _ = align_labels([place, VOCAB[1]], VOCAB, emb, threshold=0.5)
    assert [lab.name for lab in aligned] == ["place", "location"]


def test_nothing_changes_when_every_name_is_known():
    emb = _embedder({})
    aligned, report = align_labels(list(VOCAB), VOCAB, emb)
    assert aligned == VOCAB and report == []


def test_each_unshown_name_becomes_an_alias_of_its_closest_label_above_the_threshold():
    sim = np.array([[0.9, 0.2, 0.55], [0.1, 0.4, 0.6]])  # 2 target labels x 3 vocabulary names
    assert match_aliases(sim, 0.5) == {0: 0, 2: 1}
    assert match_aliases(sim, 0.7) == {0: 0}
    assert match_aliases(sim, 0.95) == {}


def test_aliases_skip_names_and_tags_in_use_and_are_read_as_the_users_tag():
    reagent = Label("reagent", "chemicals used in a protocol", tag="Reagent")
    device = Label("device", "lab equipment", tag="Device")
    emb = _embedder({label_text(reagent): [0.1, 0.1, 0.9], label_text(device): [0.0, 0.9, 0.1]})
    # "organization" is closest to reagent, "location" to device; "person" reaches neither.
    labels, report = alias_labels([reagent, device, VOCAB[0]], VOCAB, emb, threshold=0.8)
    assert [lab.aliases for lab in labels] == [("organization",), ("location",), ()]
    assert [(r["alias"], r["tag"]) for r in report] == [("location", "Device"), ("organization", "Reagent")]
    assert [lab.name for lab in labels] == ["reagent", "device", "person"], "the prompt is unchanged"
    parsed = parse_answer("organization: water\nlocation: centrifuge\nperson: Ann\ndisease: flu", labels)
    assert parsed.pairs == [("Reagent", "water"), ("Device", "centrifuge"), ("person", "Ann")]
    assert parsed.unknown_labels == {"disease": 1}, "a name far from every label is still dropped"


def test_a_listed_name_always_wins_over_an_alias():
    a = Label("alpha", "a", aliases=("beta",))
    b = Label("beta", "b")
    assert parse_answer("beta: x", [a, b]).pairs == [("beta", "x")]


def test_aliases_survive_the_bundle_round_trip_and_are_absent_when_empty():
    lab = Label("reagent", "chemicals", "Reagent", ("chemical",))
    assert Label.from_dict(lab.to_dict()) == lab
    assert "aliases" not in Label("person", "people").to_dict(), "old bundles keep their bytes"


def test_labels_for_renames_then_aliases_and_none_switches_each_step_off():
    human = Label("human", "names of people", tag="HUM")
    gadget = Label("gadget", "devices")  # close to no name enough to be renamed, to two enough for aliases
    emb = _embedder({label_text(human): [0.9, 0.1, 0.0], label_text(gadget): [0.0, 0.6, 0.55]})
    labels, changed = labels_for([human, gadget], VOCAB, emb, 0.8, 0.4)
    assert [(lab.name, lab.aliases) for lab in labels] == [("person", ()), ("gadget", ("location", "organization"))]
    assert [r["tag"] for r in changed["renamed"]] == ["HUM"] and len(changed["aliases"]) == 2
    assert labels_for([human], VOCAB, emb, None, None) == ([human], {"renamed": [], "aliases": []})


@pytest.mark.real
def test_a_real_build_shows_unknown_names_as_the_experts_names_and_keeps_the_tags(tmp_path, cli_env):
    """`samedge build` with CoNLL's types under other names (the shipped conll2003 expert, the real
    embedder): the prompt names are the expert's, the tags the user's, and bundle.json says so."""
    from samedge.bundle import read_bundle
    from samedge.library import Library

    if "conll2003" not in Library.open().names():
        pytest.skip("no shipped conll2003 expert")
    texts = tmp_path / "t.txt"
    texts.write_text("Ann Smith moved to Paris to work for Acme Corp.\nThe talks in Geneva ended on Friday.\n")
    labels = "human=names of people,institution=companies and agencies"
    proc = run_cli(["build", "--target", "renamed", "--labels", labels, "--texts", texts, "--k", "1",
                    "--select", "similarity", "--method", "linear", *_exclude_all_but("conll2003"),
                    "--threads", "1"], cli_env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = read_bundle(tmp_path / "bundles" / "renamed")
    assert [(d["tag"], d["name"]) for d in data["labels"]] == [("human", "person"), ("institution", "organization")]
    assert {r["tag"] for r in data["label_alignment"]["renamed"]} == {"human", "institution"}
    assert "'human': shown as 'person'" in proc.stderr
    # The expert's other names are read, where close enough, as one of the user's labels.
    for row in data["label_alignment"]["aliases"]:
        assert row["alias"] in {"location", "miscellaneous"} and row["tag"] in {"human", "institution"}


def _exclude_all_but(name):
    from samedge.library import Library
    return [arg for other in Library.open().names() if other != name for arg in ("--exclude", other)]
