"""Similarity selection on the real shared data: each domain's own expert should rank first.

Expert centroids: up to 256 *train* sentences of each domain (jnlpba has no
train split upstream, so its dev split stands in). Targets: 64 *test*
sentences of each domain. All 15 shared domains form the library, so every
target competes against its nearest neighbours (the 5 CrossNER Wikipedia
domains, 3 biomedical corpora, 3 social-media corpora, 2 query corpora).
"""

from __future__ import annotations

import warnings

import pytest

from samedge.embed import default_embedder_dir

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not (default_embedder_dir() / "model.onnx").is_file(),
                                 reason="models/embedder not built")]

EXPERT_TEXTS = 256
TARGET_TEXTS = 64

# target domain -> the expert that ranks first instead of its own (which must then rank second).
EXPECTED_CONFUSIONS = {
    # WNUT-17's train split is older tweets (WNUT-16: "RT @...", "&amp;", few links),
    # while its test split ("emerging and rare entities") is newer tweets with t.co
    # links and spaced "# hashtags" plus Reddit, YouTube and StackExchange comments.
    # The Broad Twitter Corpus (2009-2014, many registers, t.co links) sits closer
    # to that mixed test set than WNUT's own train tweets (cosine 0.82 vs 0.78 at
    # the time of writing), while btc's own expert still wins on btc. Both are
    # social media, so picking btc for wnut17 is the right family: recorded, not fixed.
    "wnut17": "btc",
}


@pytest.fixture(scope="module")
def centroids(shared_data):
    from samedge.data.catalog import DOMAINS, load_split
    from samedge.embed import Embedder

    embedder = Embedder.load(threads=2)
    experts, targets = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reader notes about dropped empty tokens
        for name, domain in sorted(DOMAINS.items()):
            train = "train" if "train" in domain.splits else "dev"
            train_texts = [d["text"] for d in load_split(name, train)]
            test_texts = [d["text"] for d in load_split(name, "test")]
            experts[name] = {"centroid": embedder.centroid(train_texts, max_texts=EXPERT_TEXTS).tolist(),
                             "embedder": embedder.fingerprint}
            targets[name] = embedder.centroid(test_texts, max_texts=TARGET_TEXTS)
    return experts, targets, embedder.fingerprint


def test_scores_are_the_cosines_and_weights_follow_the_ranking(centroids):
    """On real centroids: every score is the cosine of the two centroids (computed here with numpy),
    the report ranks by it, and softmax weights of the kept experts sum to 1 and fall with rank."""
    import numpy as np

    from samedge.select import select_by_similarity

    experts, targets, fingerprint = centroids
    assert set(experts) == set(targets) and len(experts) >= 15
    for name, target in targets.items():
        report = select_by_similarity(target, experts, k=3, weighting="softmax", temperature=0.05,
                                      embedder=fingerprint)
        t = np.asarray(target, dtype=np.float64)
        for row in report.experts:
            c = np.asarray(experts[row.name]["centroid"], dtype=np.float64)
            assert abs(row.similarity - float(t @ c / np.linalg.norm(t) / np.linalg.norm(c))) < 1e-5
        scores = [row.similarity for row in report.experts]
        assert scores == sorted(scores, reverse=True) and [row.rank for row in report.experts] == list(range(1, len(experts) + 1))
        kept = [row for row in report.experts if row.selected]
        assert [row.name for row in kept] == report.selected_names() == [r.name for r in report.experts[:3]]
        assert abs(sum(row.weight for row in kept) - 1) < 1e-9
        assert [row.weight for row in kept] == sorted((row.weight for row in kept), reverse=True)


def test_each_domain_ranks_its_own_expert_first(centroids):
    from samedge.select import select_by_similarity

    experts, targets, fingerprint = centroids
    outcome = {}
    for name, target in targets.items():
        report = select_by_similarity(target, experts, k=3, embedder=fingerprint)
        order = [e.name for e in report.experts]
        outcome[name] = (order, report)
    summary = "\n".join(f"{n:20s} -> " + ", ".join(f"{e.name} {e.similarity:.3f}" for e in r.experts[:3])
                        for n, (_, r) in sorted(outcome.items()))
    print("\n" + summary)

    confused = {n: order[0] for n, (order, _) in outcome.items() if order[0] != n}
    assert confused == EXPECTED_CONFUSIONS, f"confusions changed:\n{summary}"
    for name, (order, report) in outcome.items():
        if name in EXPECTED_CONFUSIONS:
            assert order[1] == name, f"{name}'s own expert fell below second place:\n{summary}"
        else:
            first, second = report.experts[:2]
            # A clear margin, not a coin toss (the closest pair, btc over wnut17 on btc, is ~0.03).
            assert first.similarity - second.similarity > 0.02, f"{name}: margin too thin\n{summary}"


def test_related_domains_are_each_others_runners_up(centroids):
    """The scores mean something beyond top-1: the nearest other domain is of the same family."""
    from samedge.select import select_by_similarity

    experts, targets, fingerprint = centroids
    # Biomedical text (abstracts and full texts: chemicals, diseases, genes, species, concepts) and tweets.
    families = [{"bc5cdr", "ncbi_disease", "jnlpba", "bc2gm", "linnaeus", "craft"}, {"btc", "wnut17"}]
    for family in families:
        for name in family:
            report = select_by_similarity(targets[name], experts, k=2, embedder=fingerprint)
            assert set(report.selected_names()) <= family, (name, report.selected_names())
