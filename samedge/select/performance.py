"""Selection by performance on sampled target instances (SaM's second criterion).

n target sentences are sampled with a fixed seed and every candidate expert
extracts entities from them, run by an injected :class:`~samedge.select.runner.ExpertRunner`
(a runtime LoRA over one shared, cached Q8_0 copy of the base; nothing is merged). Then:

- **with labels** (a target dev set): an expert's score is its micro F1;
- **without labels**, by agreement between the experts:
  - ``pairwise``: the mean F1 of an expert against each other expert's output;
  - ``vote``: F1 against the majority-vote pseudo-labels (a span and type
    predicted by more than half of the experts that found anything in that document);
  - ``vote_all``: the same, but the majority is of every expert that found anything
    anywhere in the sample, so two similar experts alone in a document (two gene
    taggers on a science text) are not a majority there;
  - ``vote_coverage``: ``vote`` times the square root of the share of the target's
    labels the expert used at least once, so a specialist that answers one type of
    many ranks below an expert that reads the whole list.
  ``vote`` is the default: on dev its picks were within 0.8 F1 of the best possible
  (BENCHMARKS.md "Selection criteria"); the others are there to choose from.
  An expert that finds nothing in the whole sample scores 0: abstaining is not agreeing.

Scores are on a 0..1 scale, like cosine similarity.
"""

from __future__ import annotations

import random
from collections import Counter

from ..config import AGREEMENT_MODES, build_default
from ..data.labels import tag_mapper
from ..errors import UserError
from ..evaluate import score_documents
from .registry import register
from .runner import ExpertRunner

DEFAULT_SAMPLE = build_default("sample")
DEFAULT_AGREEMENT = build_default("agreement")


def sample_instances(target, n: int, seed: int) -> tuple[list[dict], bool]:
    """(documents, labeled): ``n`` dev documents when the target has a dev set, else ``n`` unlabeled texts.

    Fewer available than ``n``: all of them are used (documented fallback)."""
    if n < 1:
        raise UserError(f"the sample size must be >= 1, got {n}")
    if getattr(target, "dev", None):
        from ..data.loading import load_documents
        docs = load_documents(target.dev, need_entities=True)
        labeled = True
    else:
        docs = [{"id": f"t{i}", "text": t, "entities": []} for i, t in enumerate(target.texts)]
        labeled = False
    if not docs:
        raise UserError(f"target {target.name} has no instances to sample")
    if len(docs) > n:
        docs = random.Random(seed).sample(docs, n)
    return docs, labeled


def retag_gold(docs: list[dict], labels) -> list[dict]:
    """Gold documents with each entity's label mapped to the tag of the label it denotes
    (``tag_mapper``), the tags that predictions carry; labels outside the set stay as they are."""
    to_tag = tag_mapper(labels)
    return [dict(d, entities=[dict(e, label=to_tag(e["label"])) for e in d["entities"]]) for d in docs]


def _f1(gold: list[dict], pred: list[dict]) -> float:
    report = score_documents(gold, pred)
    m = report.micro
    if m.tp + m.fp + m.fn == 0:
        return 1.0  # both found nothing: they agree
    return m.f1


def _found_anything(docs: list[dict]) -> bool:
    return any(d["entities"] for d in docs)


def agreement_scores(predictions: dict[str, list[dict]], mode: str = "vote", n_labels: int | None = None
                     ) -> dict[str, float]:
    """Unlabeled scores from the experts' predictions on the same documents (pure).

    Abstaining is not agreeing: an expert that finds nothing on the whole sample scores 0,
    and a document's majority is taken among the experts that found something in it.
    (Counting "both found nothing" as agreement ranked the weakest, silent experts first:
    Spearman -0.4 to -0.9 against test F1 on the protocol-P targets, benchmarks/accuracy.py.)
    ``n_labels``: how many labels the target has (``vote_coverage`` only; default: the most any
    expert used).
    """
    if mode not in AGREEMENT_MODES:
        raise UserError(f"unknown agreement mode {mode!r}; choose one of {', '.join(AGREEMENT_MODES)}")
    names = sorted(predictions)
    if len(names) == 1:
        return {names[0]: 1.0}
    speaks = {n: _found_anything(predictions[n]) for n in names}
    if mode == "pairwise":
        return {a: (sum(_f1(predictions[b], predictions[a]) for b in names if b != a and speaks[b])
                    / (len(names) - 1)) if speaks[a] else 0.0
                for a in names}
    speakers = sum(speaks.values())
    pseudo = []
    for docs in zip(*(predictions[n] for n in names)):
        voters = [d for d in docs if d["entities"]]
        votes = Counter((e["start"], e["end"], e["label"]) for d in voters for e in {
            (x["start"], x["end"], x["label"]): x for x in d["entities"]}.values())
        electorate = speakers if mode == "vote_all" else len(voters)
        majority = [{"start": s, "end": e, "label": lab} for (s, e, lab), c in votes.items() if c * 2 > electorate]
        pseudo.append({"id": docs[0]["id"], "text": docs[0]["text"], "entities": majority})
    scores = {n: _f1(pseudo, predictions[n]) if speaks[n] else 0.0 for n in names}
    if mode == "vote_coverage":
        used = {n: len({e["label"] for d in predictions[n] for e in d["entities"]}) for n in names}
        total = n_labels or max(used.values()) or 1
        scores = {n: scores[n] * min(1.0, used[n] / total) ** 0.5 for n in names}
    return scores


@register("performance", fills="performance", needs=("target", "base"),
          description="micro F1 on sampled labeled target instances, or agreement between experts without labels")
def performance_strategy(experts, *, target, base, sample: int = DEFAULT_SAMPLE, seed: int = 0, threads=None,
                         agreement: str = DEFAULT_AGREEMENT, align_threshold: float | None = None,
                         runner: ExpertRunner | None = None, **_ignored) -> dict[str, float]:
    docs, labeled = sample_instances(target, sample or DEFAULT_SAMPLE, seed)
    if labeled:  # predictions carry the labels' tags: gold spelled "PER" scores against the tag "person" too
        docs = retag_gold(docs, target.labels)
    labels = labels_for_experts(experts, target.labels, align_threshold, threads)
    predictions = (runner or ExpertRunner())(experts, labels, docs, base, threads=threads)
    if labeled:
        return {n: round(_f1(docs, p), 6) for n, p in predictions.items()}
    return {n: round(s, 6) for n, s in agreement_scores(predictions, agreement, len(target.labels)).items()}


def labels_for_experts(experts, target_labels, align_threshold: float | None, threads=None):
    """The target's labels, or (with label alignment) a function giving each expert the target's
    labels under the names that expert was trained on."""
    if align_threshold is None:
        return target_labels
    from ..embed import Embedder
    from .label_alignment import align_labels

    embedder = Embedder.load(threads=threads)
    aligned = {name: align_labels(target_labels, info["expert"].labels, embedder, align_threshold)[0]
               for name, info in experts.items()}
    return aligned.__getitem__
