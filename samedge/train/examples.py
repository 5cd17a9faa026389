"""Training examples: where a domain's documents come from, how one becomes a (prompt, answer)
pair, and which examples make each step's batch (all pure and seeded, so a resumed run is exact).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from ..extract.prompts import IM_END, build_prompt, format_answer
from .recipe import Recipe, answer_entities, shown_labels, vocabulary


@dataclass
class Source:
    """One domain's training documents and label set."""
    domain: str
    labels: list
    train: list
    dev: list
    description: str = ""
    licence: str = ""  # the training data's, SPDX-like; "" when unknown (a user's file)


def catalog_source(domain: str) -> Source:
    """A shared-catalog domain: its train split (or, without one, its dev split minus a held-out part)."""
    from ..data.catalog import get_domain, training_splits

    d = get_domain(domain)
    train, dev = training_splits(domain)
    return Source(domain, d.labels, train, dev, d.description, d.licence)


def file_source(domain: str, data: str | Path, dev: str | Path | None = None, labels=None) -> Source:
    """A user's own data file (JSONL with spans or CoNLL); the label set defaults to the labels found."""
    from ..data.labels import make_label
    from ..data.loading import load_documents

    docs = load_documents(data, need_entities=True)
    if labels is None:
        names = sorted({e["label"] for d in docs for e in d["entities"]})
        labels = [make_label(n) for n in names]
    names = {lab.name for lab in labels}
    docs = [dict(d, entities=[dict(e, label=make_label(e["label"]).name) for e in d["entities"]]) for d in docs]
    docs = [dict(d, entities=[e for e in d["entities"] if e["label"] in names]) for d in docs]
    if dev is not None:
        dev_docs = load_documents(dev, need_entities=True)
    else:
        rng = random.Random(1234)
        held = set(rng.sample(range(len(docs)), max(1, len(docs) // 10)))
        dev_docs = [d for i, d in enumerate(docs) if i in held]
        docs = [d for i, d in enumerate(docs) if i not in held]
    return Source(domain, labels, docs, dev_docs)


def make_example(doc: dict, labels: list, rng: random.Random, recipe: Recipe) -> tuple[str, str]:
    """(prompt, answer) for one document, its label list varied by the recipe (recipe.py)."""
    shown = shown_labels(labels, vocabulary(), rng, recipe)
    prompt_labels = [lab for lab, _ in shown]
    return (build_prompt(doc["text"], prompt_labels),
            format_answer(answer_entities(doc["entities"], shown), prompt_labels) + IM_END)


def capped_empties(docs: list[dict], max_share: float, seed: int) -> list[dict]:
    """``docs`` with the documents that hold no entity thinned (a seeded sample, order kept) to at
    most ``max_share`` of the result. Where most sentences name nothing (linnaeus: 87%), an expert
    trained on all of them learns to answer "none" to everything (dev F1 0.0 on 16 sentences and
    6.5 on 200)."""
    empty = [i for i, doc in enumerate(docs) if not doc["entities"]]
    n_full = len(docs) - len(empty)
    if max_share >= 1 or not n_full:
        return list(docs)
    keep_empty = int(max_share * n_full / (1 - max_share))
    if len(empty) <= keep_empty:
        return list(docs)
    dropped = set(empty) - set(random.Random(seed).sample(empty, keep_empty))
    return [doc for i, doc in enumerate(docs) if i not in dropped]


def example_rng(seed: int, step: int, slot: int) -> random.Random:
    """The RNG of one example of one step: every epoch shows a document with a fresh label list,
    and a resumed run renders exactly what the interrupted one would have."""
    return random.Random(f"{seed}/{step}/{slot}")


def encode_example(tokenizer, prompt: str, answer: str, max_length: int):
    """Token ids and labels (-100 on the prompt); None when it does not fit ``max_length``."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if len(p) + len(a) > max_length:
        return None
    return p + a, [-100] * len(p) + a


BUCKET_BATCHES = 16  # batches sorted together by length: less padding, still shuffled


def batch_plan(n_examples: int, batch_size: int, steps: int, seed: int, lengths=None) -> list[list[int]]:
    """Example indices for every step: a fresh seeded permutation per epoch. Pure, so that a
    resumed run sees exactly the batches the interrupted one would have seen. With ``lengths``,
    each run of BUCKET_BATCHES batches is cut from examples sorted by length (then the batches
    are shuffled), so a batch pads little."""
    plan, epoch, order = [], 0, []
    while len(plan) < steps:
        if len(order) < batch_size:
            rng = random.Random(seed * 1_000_003 + epoch)
            perm = list(range(n_examples))
            rng.shuffle(perm)
            if lengths is not None:
                perm = _bucketed(perm, lengths, batch_size, rng)
            order += perm
            epoch += 1
        plan.append(order[:batch_size])
        order = order[batch_size:]
    return plan


def _bucketed(perm: list[int], lengths, batch_size: int, rng: random.Random) -> list[int]:
    size = batch_size * BUCKET_BATCHES
    out = []
    for lo in range(0, len(perm), size):
        chunk = sorted(perm[lo:lo + size], key=lambda i: lengths[i])
        batches = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        out += [i for b in batches for i in b]
    return out


def planned_steps(n_examples: int, config: dict, n_sources: int = 1) -> int:
    """max_steps per source (the unified model gets the same per-example budget as the experts
    together), capped at max_epochs passes over the data."""
    by_epochs = math.ceil(config["max_epochs"] * n_examples / config["batch_size"])
    return max(1, min(config["max_steps"] * n_sources, by_epochs))
