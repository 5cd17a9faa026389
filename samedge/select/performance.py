"""Selection by performance on sampled target instances (SaM's second criterion).

n target sentences are sampled with a fixed seed and every candidate expert
extracts entities from them, each as a runtime LoRA over one shared, cached
Q8_0 copy of the base (llama.cpp; nothing is merged). Then:

- **with labels** (a target dev set): an expert's score is its micro F1;
- **without labels**, by agreement between the experts:
  - ``pairwise``: the mean F1 of an expert against each other expert's output;
  - ``vote``: F1 against the majority-vote pseudo-labels (a span and type
    predicted by more than half of the experts that found anything in that document).
  An expert that finds nothing in the whole sample scores 0: abstaining is not agreeing.

Scores are on a 0..1 scale, like cosine similarity.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from pathlib import Path

from ..config import build_default
from ..data.labels import tag_mapper
from ..errors import UserError
from ..evaluate import score_documents
from .registry import register

AGREEMENT_MODES = ("pairwise", "vote")
DEFAULT_SAMPLE = build_default("sample")


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


def agreement_scores(predictions: dict[str, list[dict]], mode: str = "vote") -> dict[str, float]:
    """Unlabeled scores from the experts' predictions on the same documents (pure).

    Abstaining is not agreeing: an expert that finds nothing on the whole sample scores 0,
    and a document's majority is taken among the experts that found something in it.
    (Counting "both found nothing" as agreement ranked the weakest, silent experts first:
    Spearman -0.4 to -0.9 against test F1 on the protocol-P targets, benchmarks/accuracy.py.)
    """
    if mode not in AGREEMENT_MODES:
        raise UserError(f"unknown agreement mode {mode!r}; choose {' or '.join(AGREEMENT_MODES)}")
    names = sorted(predictions)
    if len(names) == 1:
        return {names[0]: 1.0}
    speaks = {n: _found_anything(predictions[n]) for n in names}
    if mode == "pairwise":
        return {a: (sum(_f1(predictions[b], predictions[a]) for b in names if b != a and speaks[b])
                    / (len(names) - 1)) if speaks[a] else 0.0
                for a in names}
    pseudo = []
    for docs in zip(*(predictions[n] for n in names)):
        voters = [d for d in docs if d["entities"]]
        votes = Counter((e["start"], e["end"], e["label"]) for d in voters for e in {
            (x["start"], x["end"], x["label"]): x for x in d["entities"]}.values())
        majority = [{"start": s, "end": e, "label": lab} for (s, e, lab), c in votes.items() if c * 2 > len(voters)]
        pseudo.append({"id": docs[0]["id"], "text": docs[0]["text"], "entities": majority})
    return {n: _f1(pseudo, predictions[n]) if speaks[n] else 0.0 for n in names}


def lora_gguf(expert, base_gguf: Path) -> Path:
    """The expert's adapter as a GGUF LoRA, converted once and cached by the adapter's sha256."""
    from ..files import samedge_home
    from ..merge.lora import ADAPTER, convert_lora

    digest = expert.manifest["files"][ADAPTER]
    dest = samedge_home() / "lora" / f"{digest[:32]}.gguf"
    if not dest.is_file():
        convert_lora(expert.path, dest, base_gguf)
    return dest


def scoring_base(base) -> Path:
    """A Q8_0 copy of the base for scoring candidates (faster than f16; cached beside it)."""
    from samedge.converters.quantize import quantize

    dest = base.root / "base.q8_0.gguf"
    if not dest.is_file():
        quantize(base.gguf, dest, "q8_0")
    return dest


class ExpertRunner:
    """Runs candidate experts on documents, each as a runtime LoRA over one shared, cached Q8_0 base.

    It remembers the predictions it made, keyed by (adapter sha256, labels, documents), so the
    callers that score the same candidates on the same sample (several selection strategies,
    --ensemble, benchmarks) decode each expert once by sharing one runner. Decoding is greedy
    and deterministic, so reuse is exact. Tests inject a runner of their own."""

    def __init__(self, remember: int = 256):
        self.remember = remember
        self._made: dict[tuple, list[dict]] = {}

    @staticmethod
    def _key(expert, labels, docs: list[dict]) -> tuple:
        sha = expert.manifest["files"].get("adapter_model.safetensors", str(expert.path))
        return (sha, tuple((lab.name, lab.description, lab.tag) for lab in labels),
                tuple((d["id"], d["text"]) for d in docs))

    def __call__(self, experts: dict, labels, docs: list[dict], base, threads=None,
                 progress=True) -> dict[str, list[dict]]:
        """Each expert's predictions on ``docs``, as runtime LoRAs on one loaded base. ``labels`` is one
        label list for all, or a function of the expert's name (each expert asked under its own names)."""
        labels_of = labels if callable(labels) else (lambda name: labels)
        from tqdm.auto import tqdm

        from ..extract.engines.llama import LlamaEngine
        from ..extract.extractor import Extractor

        keys = {name: self._key(experts[name]["expert"], labels_of(name), docs) for name in experts}
        out = {name: copy.deepcopy(self._made[key]) for name, key in keys.items() if key in self._made}
        todo = sorted(set(experts) - set(out))
        if not todo:
            return out
        engine = LlamaEngine(scoring_base(base), threads=threads)
        try:
            for name in tqdm(todo, desc="score experts", unit="expert", disable=not progress):
                engine.set_adapter(lora_gguf(experts[name]["expert"], base.gguf))
                out[name] = Extractor(engine, labels_of(name)).extract_many([d["text"] for d in docs],
                                                                            ids=[d["id"] for d in docs])
                if len(self._made) < self.remember:
                    self._made[keys[name]] = copy.deepcopy(out[name])
            return out
        finally:
            engine.close()


def run_experts(experts: dict, labels, docs: list[dict], base, threads=None, progress=True) -> dict[str, list[dict]]:
    """One-off predictions (see :class:`ExpertRunner`); share a runner to reuse them across calls."""
    return ExpertRunner()(experts, labels, docs, base, threads=threads, progress=progress)


@register("performance", fills="performance", needs=("target", "base"),
          description="micro F1 on sampled labeled target instances, or agreement between experts without labels")
def performance_strategy(experts, *, target, base, sample: int = DEFAULT_SAMPLE, seed: int = 0, threads=None,
                         agreement: str = "vote", align_threshold: float | None = None,
                         runner: ExpertRunner | None = None, **_ignored) -> dict[str, float]:
    docs, labeled = sample_instances(target, sample or DEFAULT_SAMPLE, seed)
    if labeled:  # predictions carry the labels' tags: gold spelled "PER" scores against the tag "person" too
        docs = retag_gold(docs, target.labels)
    labels = target.labels
    if align_threshold is not None:  # each expert is asked under the names it was trained on
        from ..embed import Embedder
        from .label_alignment import align_labels

        embedder = Embedder.load(threads=threads)
        aligned = {name: align_labels(target.labels, info["expert"].labels, embedder, align_threshold)[0]
                   for name, info in experts.items()}
        labels = aligned.__getitem__
    predictions = (runner or ExpertRunner())(experts, labels, docs, base, threads=threads)
    if labeled:
        return {n: round(_f1(docs, p), 6) for n, p in predictions.items()}
    return {n: round(s, 6) for n, s in agreement_scores(predictions, agreement).items()}
