"""Label alignment: a target label the experts never saw is shown under their closest known name."""

from __future__ import annotations

import numpy as np
import pytest

from samedge.data.labels import Label
from samedge.select.label_alignment import align_labels, label_text, match_labels
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


def _exclude_all_but(name):
    from samedge.library import Library
    return [arg for other in Library.open().names() if other != name for arg in ("--exclude", other)]
