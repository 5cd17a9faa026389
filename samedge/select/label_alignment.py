"""Show a target's labels to the experts under the names they were trained on.

An expert answers with the type names it learned: asked for CoNLL's types as "human, place,
institution, other name", the conll2003 expert answers "person", "location", ... and every answer
is dropped (0.0 F1 on CoNLL dev, BENCHMARKS.md "Label alignment"). So before selection, each target
label whose name no library expert knows is matched, by the shipped sentence embedder, to the
closest label of the library's vocabulary ("name: description" against "name: description");
above a similarity threshold (chosen on dev) the prompt shows the known name, with the user's
description. Entities still carry the user's tag: only the prompt changes.

The other way round, a merged expert still answers with names the prompt does not show (asked for
"reagent", the chemistry experts answer "chemical: ultrapure water"). Each such vocabulary name
becomes an *answer alias* of the target label it is closest to, above a second threshold (also
chosen on dev): the answer is kept, under that label's tag, instead of being dropped.
"""

from __future__ import annotations

import numpy as np

from ..data.labels import Label, label_key

DEFAULT_THRESHOLD = 0.6  # chosen on dev splits: BENCHMARKS.md, "Label alignment" (build.ALIGN_THRESHOLD)
DEFAULT_ALIAS_THRESHOLD = None  # off: no threshold measured better on dev (BENCHMARKS.md, "Answer aliases")


def label_text(label: Label) -> str:
    return f"{label.name}: {label.description}"


def match_labels(similarity: np.ndarray, target_known: list[bool], threshold: float) -> dict[int, int]:
    """Target index -> vocabulary index, greedily by descending similarity (pure).

    Labels the library already knows keep their name, and reserve it; each vocabulary name serves at
    most one target label, so two user labels never collapse into one prompt name."""
    pairs = sorted(((similarity[i, j], i, j) for i in range(similarity.shape[0])
                    for j in range(similarity.shape[1])), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for score, i, j in pairs:
        if score < threshold or target_known[i] or i in matched or j in used:
            continue
        matched[i] = j
        used.add(j)
    return matched


def _cosine(embedder, rows: list[Label], columns: list[Label]) -> np.ndarray:
    a = embedder.embed([label_text(lab) for lab in rows])
    b = embedder.embed([label_text(lab) for lab in columns])
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def align_labels(labels: list[Label], vocabulary: list[Label], embedder,
                 threshold: float = DEFAULT_THRESHOLD) -> tuple[list[Label], list[dict]]:
    """(labels with aligned prompt names, one row per renamed label: tag, from, to, similarity)."""
    by_name: dict[str, Label] = {}
    for lab in vocabulary:
        by_name.setdefault(lab.name, lab)
    known = {name.lower() for name in by_name}
    target_known = [lab.name.lower() in known for lab in labels]
    # A known name is reserved for the label that already uses it.
    vocab = [lab for name, lab in sorted(by_name.items())
             if name.lower() not in {lab.name.lower() for lab in labels}]
    if not vocab or all(target_known):
        return list(labels), []
    similarity = _cosine(embedder, labels, vocab)
    matched = match_labels(similarity, target_known, threshold)
    out, report = [], []
    for i, lab in enumerate(labels):
        if i in matched:
            new = vocab[matched[i]].name
            report.append({"tag": lab.tag, "from": lab.name, "to": new,
                           "similarity": round(float(similarity[i, matched[i]]), 4)})
            lab = Label(new, lab.description, tag=lab.tag)
        out.append(lab)
    return out, report


def match_aliases(similarity: np.ndarray, threshold: float) -> dict[int, int]:
    """Vocabulary index -> target index (pure): each vocabulary name goes to the target label it is
    closest to, when that similarity reaches ``threshold``. Several names may go to one label."""
    out = {}
    for j in range(similarity.shape[1]):
        i = int(np.argmax(similarity[:, j]))
        if similarity[i, j] >= threshold:
            out[j] = i
    return out


def alias_labels(labels: list[Label], vocabulary: list[Label], embedder,
                 threshold: float = DEFAULT_ALIAS_THRESHOLD) -> tuple[list[Label], list[dict]]:
    """(labels with answer aliases, one row per alias: alias, tag, similarity).

    Only vocabulary names that are neither a prompt name nor a tag of ``labels`` become aliases, so
    an answer that names a listed label always means that label."""
    taken = {label_key(lab.name) for lab in labels} | {label_key(lab.tag) for lab in labels}
    by_key: dict[str, Label] = {}
    for lab in vocabulary:
        if label_key(lab.name) not in taken:
            by_key.setdefault(label_key(lab.name), lab)
    if not by_key or not labels:
        return list(labels), []
    vocab = [by_key[k] for k in sorted(by_key)]
    similarity = _cosine(embedder, labels, vocab)
    aliases: dict[int, list[str]] = {}
    report = []
    for j, i in sorted(match_aliases(similarity, threshold).items()):
        aliases.setdefault(i, []).append(vocab[j].name)
        report.append({"alias": vocab[j].name, "tag": labels[i].tag, "similarity": round(float(similarity[i, j]), 4)})
    out = [Label(lab.name, lab.description, lab.tag, tuple(lab.aliases) + tuple(aliases.get(i, ())))
           for i, lab in enumerate(labels)]
    return out, report


def labels_for(labels: list[Label], vocabulary: list[Label], embedder, align_threshold: float | None,
               alias_threshold: float | None) -> tuple[list[Label], dict]:
    """The labels as experts with this ``vocabulary`` are asked (aligned prompt names) and read (answer
    aliases), and what changed: ``{"renamed": [...], "aliases": [...]}``. A None threshold skips that step."""
    renamed, aliased = [], []
    if align_threshold is not None:
        labels, renamed = align_labels(labels, vocabulary, embedder, align_threshold)
    if alias_threshold is not None:
        labels, aliased = alias_labels(labels, vocabulary, embedder, alias_threshold)
    return list(labels), {"renamed": renamed, "aliases": aliased}
