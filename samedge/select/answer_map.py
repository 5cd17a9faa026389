"""Read a merged model's answers the way the target's labeled examples say they mean.

An expert answers with the types it was trained on, whatever the prompt lists: asked for
CrossNER politics' types, the conll2003 expert calls politicians ``person`` and parties
``organization``. Label alignment (label_alignment.py) renames the prompt; it cannot tell that on
this target *person* answers are mostly politicians. With labeled target examples (a profile's dev
set, ``--dev``) the build decodes them with the merged model and learns, for each answer type, the
reading that maximises micro F1 on them: the tag it already denotes, another of the target's tags,
or nothing (dropped). spaCy's peer row learns its type mapping the same way, on a whole train split.
Entities keep the user's tags; only how answers are read changes, and bundle.json records it.
"""

from __future__ import annotations

from collections import Counter, defaultdict

# A reading other than the default needs this many exact matches (or, to drop a type, this many
# answers) in the labeled examples. Measured on dev over the 16 P and N targets (BENCHMARKS.md
# "Answer map"): 1 gave 21.2 mean F1, 2 gave 21.1, 3 gave 20.9, no map 14.4.
MIN_SUPPORT = 1
PASSES = 3


def _f1(tp: int, predicted: int, gold: int) -> float:
    return 2 * tp / (predicted + gold) if predicted + gold else 0.0


def learn_answer_map(preds: list[list[tuple]], gold: list[list[tuple]], default: dict[str, str],
                     min_support: int = MIN_SUPPORT) -> dict[str, str | None]:
    """Answer type -> tag (or None: drop it), for the types whose best reading is not ``default`` (pure).

    ``preds``: per document, (start, end, answer type) as the model answered; ``gold``: per document,
    (start, end, tag); ``default``: answer type -> the tag the label set already reads it as. Each
    type's reading is chosen in turn (most frequent types first, a few passes) to maximise micro F1
    over all documents given the others; ties keep the current reading."""
    answers: Counter = Counter()
    matches: dict[str, Counter] = defaultdict(Counter)
    for found, expected in zip(preds, gold):
        spans = {(start, end): tag for start, end, tag in expected}
        for start, end, source in found:
            answers[source] += 1
            if (start, end) in spans:
                matches[source][spans[(start, end)]] += 1
    n_gold = sum(len(expected) for expected in gold)
    tags = sorted(set(default.values()))  # only the label set's tags: gold outside it is never output
    reading = {source: default.get(source) for source in answers}

    def totals(skip: str) -> tuple[int, int]:
        tp = sum(matches[s][reading[s]] for s in answers if s != skip and reading[s] is not None)
        predicted = sum(answers[s] for s in answers if s != skip and reading[s] is not None)
        return tp, predicted

    order = sorted(answers, key=lambda s: (-answers[s], s))
    for _ in range(PASSES):
        changed = False
        for source in order:
            tp, predicted = totals(source)

            def f1_of(option):
                if option is None:
                    return _f1(tp, predicted, n_gold)
                return _f1(tp + matches[source][option], predicted + answers[source], n_gold)

            best, best_f1 = reading[source], f1_of(reading[source])
            for option in [None, *tags]:
                supported = (answers[source] >= min_support if option is None
                             else matches[source][option] >= min_support or option == default.get(source))
                if supported and f1_of(option) > best_f1 + 1e-12:
                    best, best_f1 = option, f1_of(option)
            if best != reading[source]:
                reading[source], changed = best, True
        if not changed:
            break
    return {s: reading[s] for s in sorted(answers) if reading[s] != default.get(s)}


def spans_of(docs: list[dict]) -> list[list[tuple]]:
    """Documents' entities as (start, end, label) lists."""
    return [[(e["start"], e["end"], e["label"]) for e in d["entities"]] for d in docs]


def read_f1(preds: list[list[tuple]], gold: list[list[tuple]], default: dict[str, str],
            mapping: dict[str, str | None]) -> float:
    """Micro F1 (0-100) of answers read through ``mapping`` over ``default`` (pure)."""
    tp = predicted = 0
    for found, expected in zip(preds, gold):
        spans = {(s, e): t for s, e, t in expected}
        for start, end, source in found:
            tag = mapping[source] if source in mapping else default.get(source)
            if tag is not None:
                predicted += 1
                tp += spans.get((start, end)) == tag
    return round(100 * _f1(tp, predicted, sum(map(len, gold))), 2)


def fit_answer_map(engine, labels, docs: list[dict], min_support: int = MIN_SUPPORT) -> dict:
    """Decode labeled ``docs`` with ``engine`` (the merged model) and learn its answer map.

    Returns {"map": {answer type: tag or None}, "documents", "f1_before", "f1_after", "changes"}; the
    F1s are on the documents the map was learned on, so "after" is optimistic."""
    from ..extract.extractor import Extractor
    from ..extract.prompts import answer_keys
    from .performance import retag_gold

    found = Extractor(engine, labels, raw_answers=True).extract_many([d["text"] for d in docs],
                                                                     ids=[d["id"] for d in docs])
    preds, gold = spans_of(found), spans_of(retag_gold(docs, labels))
    default = answer_keys(labels)
    mapping = learn_answer_map(preds, gold, default, min_support)
    counts = Counter(source for found_doc in preds for _, _, source in found_doc)
    changes = [{"answer": s, "was": default.get(s), "now": t, "answers": counts[s]} for s, t in mapping.items()]
    return {"map": mapping, "documents": len(docs), "f1_before": read_f1(preds, gold, default, {}),
            "f1_after": read_f1(preds, gold, default, mapping), "changes": changes}
